"""Login over HTTP: passwords, service login tokens, the cookie, logout, JWKS, rate limits."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
import pytest

from app.authn import JwtAuthenticator, KeySet, StaticKeys
from tests.authn.tokens import Signer
from tests.iam.conftest import ADMIN, ADMIN_PASSWORD, Responses, Served, auth, login

SVC = "svc-logs"


@pytest.fixture(scope="module")
def svc_key() -> Signer:
    return Signer.generate("svc")


@pytest.fixture
async def service_account(client: httpx.AsyncClient, admin: dict[str, str], svc_key: Signer) -> str:
    body = {"description": "log shipper", "public_key": svc_key.public_pem.decode()}
    r = await client.put(f"/users/{SVC}", json=body, headers=admin)
    assert r.status_code in (201, 409), r.text  # one server per module
    return SVC


def service_token(signer: Signer, claims: dict[str, Any] | None = None, **kw: Any) -> str:
    now = int(time.time())
    return signer.token({"uid": SVC, "exp": now + 300} if claims is None else claims, **kw)


async def verify_with_jwks(client: httpx.AsyncClient, token: str) -> str:
    """What any out-of-band verifier does: fetch the JWKS, verify RS256, read uid."""
    document = (await client.get("/auth/jwks")).json()
    verifier = JwtAuthenticator(StaticKeys(KeySet.from_jwks(document)))
    return (await verifier.verify(token)).uid


async def test_password_login_gives_a_token_the_jwks_verifies(client: httpx.AsyncClient) -> None:
    r = await client.post("/auth/login", json={"uid": ADMIN, "password": ADMIN_PASSWORD})
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.headers["cache-control"] == "no-store"
    assert set(r.json()) == {"token"}
    token = r.json()["token"]
    assert await verify_with_jwks(client, token) == ADMIN


async def test_token_shape_is_dcos(client: httpx.AsyncClient, shared: Served) -> None:
    import base64
    import json

    token = await login(client, ADMIN, ADMIN_PASSWORD)
    header_b64, payload_b64, _ = token.split(".")
    header = json.loads(base64.urlsafe_b64decode(header_b64 + "=="))
    payload = json.loads(base64.urlsafe_b64decode(payload_b64 + "=="))
    jwks = (await client.get("/auth/jwks")).json()
    assert header == {"alg": "RS256", "typ": "JWT", "kid": jwks["keys"][0]["kid"]}
    assert set(payload) == {"uid", "exp", "iat"}
    assert payload["exp"] - payload["iat"] == shared.iam.settings.token_lifetime == 5 * 86400


async def test_jwks_document(client: httpx.AsyncClient) -> None:
    r = await client.get("/auth/jwks")
    assert r.status_code == 200
    (key,) = r.json()["keys"]
    assert key.keys() == {"kty", "alg", "use", "kid", "n", "e"}
    assert (key["kty"], key["alg"], key["use"], key["e"]) == ("RSA", "RS256", "sig", "AQAB")
    assert len(key["kid"]) == 64


@pytest.mark.parametrize(
    ("uid", "password"),
    [(ADMIN, "wrong password!"), ("nobody", ADMIN_PASSWORD), (ADMIN, ADMIN_PASSWORD.upper())],
)
async def test_bad_credentials_are_401(client: httpx.AsyncClient, uid: str, password: str) -> None:
    r = await client.post("/auth/login", json={"uid": uid, "password": password})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "acsjwt"
    assert "set-cookie" not in r.headers


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{not json", "body"),
        (b'{"uid": "admin"}', "password or token"),
        (b'{"uid": "admin", "password": "x", "token": "y"}', "password or token"),
        (b'{"password": "x"}', "uid"),
        (b'{"uid": 5, "password": "x"}', "uid"),
        (b'{"uid": "a b", "password": "x"}', "uid"),
        (b'{"uid": "admin", "pasword": "x"}', "pasword"),
        (b"[]", "body"),
    ],
)
async def test_malformed_login_is_400_naming_the_field(
    client: httpx.AsyncClient, body: bytes, field: str
) -> None:
    r = await client.post("/auth/login", content=body)
    assert r.status_code == 400
    assert field in r.text


async def test_login_sets_an_http_only_cookie_and_logout_clears_it(
    client: httpx.AsyncClient, shared: Served
) -> None:
    r = await client.post("/auth/login", json={"uid": ADMIN, "password": ADMIN_PASSWORD})
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"dcos-acs-auth-cookie={r.json()['token']};")
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "path", "max-age", "samesite"} <= attributes
    assert f"Max-Age={shared.iam.settings.token_lifetime}" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/" in cookie
    assert "secure" not in attributes  # plain http here; set on https

    # The cookie authenticates (the client keeps it) ...
    assert (await client.get("/users")).status_code == 200
    r = await client.get("/auth/logout")
    assert r.status_code == 200
    assert r.headers["set-cookie"].startswith('dcos-acs-auth-cookie="";')
    assert "Max-Age=0" in r.headers["set-cookie"]
    # ... and after logout it is gone.
    assert (await client.get("/users")).status_code == 401


async def test_cookie_alone_cannot_make_cross_site_changes(client: httpx.AsyncClient) -> None:
    r = await client.post("/auth/login", json={"uid": ADMIN, "password": ADMIN_PASSWORD})
    assert "dcos-acs-auth-cookie" in client.cookies
    r = await client.put("/groups/ops", json={}, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403
    assert (await client.put("/groups/ops", json={})).status_code == 403  # no Origin
    same_origin = f"{client.base_url.scheme}://{client.base_url.netloc.decode()}"
    r = await client.put("/groups/ops", json={}, headers={"Origin": same_origin})
    assert r.status_code == 201


async def test_service_login(
    client: httpx.AsyncClient, service_account: str, svc_key: Signer
) -> None:
    r = await client.post("/auth/login", json={"uid": SVC, "token": service_token(svc_key)})
    assert r.status_code == 200, r.text
    assert await verify_with_jwks(client, r.json()["token"]) == SVC
    assert "dcos-acs-auth-cookie=" in r.headers["set-cookie"]


def _refused_service_tokens(svc: Signer, other: Signer) -> dict[str, str]:
    now = int(time.time())
    return {
        "expired": service_token(svc, {"uid": SVC, "exp": now - 120}),
        "no exp": service_token(svc, {"uid": SVC}),
        "future iat": service_token(svc, {"uid": SVC, "exp": now + 300, "iat": now + 600}),
        "future nbf": service_token(svc, {"uid": SVC, "exp": now + 300, "nbf": now + 600}),
        "string exp": service_token(svc, {"uid": SVC, "exp": str(now + 300)}),
        "wrong key": service_token(other),
        "other uid": service_token(svc, {"uid": ADMIN, "exp": now + 300}),
        "not a jwt": "not-a-token",
        "alg none": "eyJhbGciOiJub25lIn0.eyJ1aWQiOiJzdmMtbG9ncyJ9.",
    }


@pytest.mark.parametrize(
    "case",
    [
        "expired",
        "no exp",
        "future iat",
        "future nbf",
        "string exp",
        "wrong key",
        "other uid",
        "not a jwt",
        "alg none",
    ],
)
async def test_bad_service_login_tokens_are_401(
    client: httpx.AsyncClient, service_account: str, svc_key: Signer, case: str
) -> None:
    token = _refused_service_tokens(svc_key, Signer.generate("other"))[case]
    r = await client.post("/auth/login", json={"uid": SVC, "token": token})
    assert r.status_code == 401, case


async def test_an_auth_token_is_not_a_service_login_token(
    client: httpx.AsyncClient, service_account: str, svc_key: Signer
) -> None:
    """J24: the IAM's own token for the same uid is refused as a login credential."""
    r = await client.post("/auth/login", json={"uid": SVC, "token": service_token(svc_key)})
    auth_token = r.json()["token"]
    r = await client.post("/auth/login", json={"uid": SVC, "token": auth_token})
    assert r.status_code == 401


async def test_service_accounts_have_no_password_and_users_no_service_login(
    client: httpx.AsyncClient, service_account: str, svc_key: Signer
) -> None:
    r = await client.post("/auth/login", json={"uid": SVC, "password": "anything at all"})
    assert r.status_code == 401
    token = svc_key.token({"uid": ADMIN, "exp": int(time.time()) + 300})
    r = await client.post("/auth/login", json={"uid": ADMIN, "token": token})
    assert r.status_code == 401


async def test_iam_keys_cannot_be_registered_as_a_service_key(
    client: httpx.AsyncClient, admin: dict[str, str], shared: Served
) -> None:
    iam_key = shared.iam.keys.current.private_key.public_key()
    from cryptography.hazmat.primitives import serialization

    pem = iam_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    r = await client.put("/users/sneaky", json={"public_key": pem}, headers=admin)
    assert r.status_code == 400
    assert "public_key" in r.text


async def test_failed_logins_are_rate_limited_per_uid(isolated_client: httpx.AsyncClient) -> None:
    client = isolated_client
    for _ in range(10):  # default: 10 failures per minute per uid
        r = await client.post("/auth/login", json={"uid": ADMIN, "password": "guess guess"})
        assert r.status_code == 401
    r = await client.post("/auth/login", json={"uid": ADMIN, "password": "guess guess"})
    assert r.status_code == 429
    assert 1 <= int(r.headers["retry-after"]) <= 60
    # Even the right password waits: that is what makes guessing slow.
    r = await client.post("/auth/login", json={"uid": ADMIN, "password": ADMIN_PASSWORD})
    assert r.status_code == 429


async def test_failed_logins_are_rate_limited_per_address(
    isolated_client: httpx.AsyncClient,
) -> None:
    client = isolated_client
    statuses = []
    for i in range(31):  # 30 failures per minute per address, spread over many uids
        r = await client.post("/auth/login", json={"uid": f"user{i}", "password": "guess guess"})
        statuses.append(r.status_code)
    assert statuses == [401] * 30 + [429]
    assert "retry-after" in r.headers


async def test_concurrent_guesses_cannot_overrun_the_limit(
    isolated_client: httpx.AsyncClient,
) -> None:
    client = isolated_client
    import asyncio

    body = {"uid": ADMIN, "password": "guess guess"}
    results = await asyncio.gather(*(client.post("/auth/login", json=body) for _ in range(25)))
    assert sorted(r.status_code for r in results) == [401] * 10 + [429] * 15


async def test_audit_lines_name_the_failure_but_never_the_secret(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    caplog: pytest.LogCaptureFixture,
    responses: Responses,
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "hunter2-is-not-a-password"
    r = await client.put("/users/carol", json={"password": secret}, headers=admin)
    assert r.status_code == 201
    await client.post("/auth/login", json={"uid": "carol", "password": secret + "x"})
    good = await login(client, "carol", secret)
    await client.post("/auth/login", json={"uid": "carol", "token": good})
    await client.patch("/users/carol", json={"password": secret + "2"}, headers=admin)

    # The server's records (this test's httpx client logs its own traffic at DEBUG).
    server_side = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    text = "\n".join(r.getMessage() for r in server_side)
    assert server_side
    assert secret not in text
    assert good not in text
    assert good.split(".")[2] not in text
    deny = [m for m in caplog.messages if "action=login result=deny" in m]
    assert (
        'type=audit action=login result=deny uid=carol srcip=127.0.0.1 reason="wrong password"'
        in deny
    )
    assert any("action=login result=allow uid=carol" in m for m in caplog.messages)


async def test_wrong_password_then_unknown_user_answers_look_alike(
    client: httpx.AsyncClient,
) -> None:
    a = await client.post("/auth/login", json={"uid": ADMIN, "password": "wrong wrong"})
    b = await client.post("/auth/login", json={"uid": "ghost", "password": "wrong wrong"})
    assert (a.status_code, a.text) == (b.status_code, b.text)


async def test_bearer_and_token_schemes_both_work(client: httpx.AsyncClient) -> None:
    token = await login(client, ADMIN, ADMIN_PASSWORD)
    for headers in (auth(token), {"Authorization": f"Bearer {token}"}):
        assert (await client.get("/users", headers=headers)).status_code == 200
