"""The admin API over HTTP: users, service accounts, groups, memberships, ACLs, permissions,
policy query; status codes as DC/OS's IAM, and never a 500."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.authn.tokens import Signer
from tests.iam.conftest import ADMIN, auth, login

USER_PASSWORD = "a fine password"


def name(prefix: str) -> str:
    """Tests share one server per module: every test makes its own names."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def user(client: httpx.AsyncClient, admin: dict[str, str]) -> str:
    uid = name("bob")
    r = await client.put(
        f"/users/{uid}", json={"description": "Bob", "password": USER_PASSWORD}, headers=admin
    )
    assert r.status_code == 201
    return uid


@pytest.fixture
async def user_headers(client: httpx.AsyncClient, user: str) -> dict[str, str]:
    return auth(await login(client, user, USER_PASSWORD))


async def test_user_crud(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    uid = name("alice")
    r = await client.put(
        f"/users/{uid}", json={"description": "Alice", "password": USER_PASSWORD}, headers=admin
    )
    assert r.status_code == 201
    assert (await client.put(f"/users/{uid}", json={}, headers=admin)).status_code == 409

    r = await client.get(f"/users/{uid}", headers=admin)
    assert r.status_code == 200
    assert r.json() == {
        "uid": uid,
        "description": "Alice",
        "url": f"/acs/api/v1/users/{uid}",
        "is_remote": False,
        "is_service": False,
        "provider_type": "internal",
        "provider_id": "",
    }
    listed = (await client.get("/users", headers=admin)).json()["array"]
    assert {u["uid"] for u in listed} >= {uid, ADMIN}

    r = await client.patch(f"/users/{uid}", json={"description": "Alice B."}, headers=admin)
    assert r.status_code == 204
    assert (await client.get(f"/users/{uid}", headers=admin)).json()["description"] == "Alice B."
    r = await client.patch(f"/users/{uid}", json={"password": "a new password"}, headers=admin)
    assert r.status_code == 204
    await login(client, uid, "a new password")

    assert (await client.delete(f"/users/{uid}", headers=admin)).status_code == 204
    assert (await client.get(f"/users/{uid}", headers=admin)).status_code == 404
    assert (await client.delete(f"/users/{uid}", headers=admin)).status_code == 404
    assert (
        await client.patch(f"/users/{uid}", json={"description": "x"}, headers=admin)
    ).status_code == 404
    r = await client.post("/auth/login", json={"uid": uid, "password": "a new password"})
    assert r.status_code == 401


async def test_service_accounts(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    uid = name("svc")
    key, other = Signer.generate("a"), Signer.generate("b")
    body = {"description": "A service", "public_key": key.public_pem.decode()}
    assert (await client.put(f"/users/{uid}", json=body, headers=admin)).status_code == 201

    shown = (await client.get(f"/users/{uid}", headers=admin)).json()
    assert shown["is_service"] is True
    assert shown["public_key"].strip() == key.public_pem.decode().strip()
    services = (await client.get("/users?type=service", headers=admin)).json()["array"]
    people = (await client.get("/users", headers=admin)).json()["array"]
    assert uid in {u["uid"] for u in services}
    assert uid not in {u["uid"] for u in people}
    for undocumented in ("user", "", "SERVICE"):  # openapi: enum ["service"] (issue 12 §6)
        r = await client.get("/users", params={"type": undocumented}, headers=admin)
        assert r.status_code == 400, undocumented
        assert "type" in r.text

    # Its key can be replaced; a password cannot be given to it.
    r = await client.patch(
        f"/users/{uid}", json={"public_key": other.public_pem.decode()}, headers=admin
    )
    assert r.status_code == 204
    r = await client.patch(f"/users/{uid}", json={"password": "a password"}, headers=admin)
    assert r.status_code == 409


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"{", "malformed JSON"),
        (b'{"password": "short"}', "password"),
        (b'{"description": 7}', "description"),
        (b'{"public_key": "not a key"}', "public_key"),
        (b'{"password": "long enough", "public_key": "x"}', "not both"),
        (b'{"passwd": "long enough"}', "passwd"),
        (b'"a string"', "body"),
    ],
)
async def test_bad_user_bodies_are_400(
    client: httpx.AsyncClient, admin: dict[str, str], body: bytes, field: str
) -> None:
    r = await client.put(f"/users/{name('x')}", content=body, headers=admin)
    assert r.status_code == 400
    assert field in r.text


async def test_weak_service_keys_are_refused(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    weak = Signer.generate("weak", bits=1024)
    r = await client.put(
        f"/users/{name('svc')}", json={"public_key": weak.public_pem.decode()}, headers=admin
    )
    assert r.status_code == 400
    assert "public_key" in r.text


@pytest.mark.parametrize("bad", ["a b", "x" * 97, "ünï", "a%2Fb", "a;b"])
async def test_bad_ids_are_400(client: httpx.AsyncClient, admin: dict[str, str], bad: str) -> None:
    for path in (f"/users/{bad}", f"/groups/{bad}"):
        r = await client.put(path, json={}, headers=admin)
        assert r.status_code in (400, 404), path  # 404: the router found no route for it
        assert r.status_code != 201


async def test_group_crud_and_memberships(
    client: httpx.AsyncClient, admin: dict[str, str], user: str
) -> None:
    gid = name("ops")
    assert (
        await client.put(f"/groups/{gid}", json={"description": "Operators"}, headers=admin)
    ).status_code == 201
    assert (
        await client.put(f"/groups/{gid}", json={"description": "again"}, headers=admin)
    ).status_code == 409
    r = await client.get(f"/groups/{gid}", headers=admin)
    assert r.json() == {"gid": gid, "description": "Operators", "url": f"/acs/api/v1/groups/{gid}"}
    assert gid in {g["gid"] for g in (await client.get("/groups", headers=admin)).json()["array"]}
    assert (
        await client.patch(f"/groups/{gid}", json={"description": "Ops"}, headers=admin)
    ).status_code == 204
    assert (await client.get(f"/groups/{gid}", headers=admin)).json()["description"] == "Ops"

    assert (await client.put(f"/groups/{gid}/users/{user}", headers=admin)).status_code == 204
    assert (await client.put(f"/groups/{gid}/users/{user}", headers=admin)).status_code == 409
    assert (await client.put(f"/groups/{gid}/users/nobody", headers=admin)).status_code == 404
    assert (await client.put(f"/groups/nogroup/users/{user}", headers=admin)).status_code == 404
    members = (await client.get(f"/groups/{gid}/users", headers=admin)).json()["array"]
    assert members == [
        {
            "membershipurl": f"/acs/api/v1/groups/{gid}/users/{user}",
            "user": (await client.get(f"/users/{user}", headers=admin)).json(),
        }
    ]
    groups = (await client.get(f"/users/{user}/groups", headers=admin)).json()["array"]
    assert [g["group"]["gid"] for g in groups] == [gid]

    assert (await client.delete(f"/groups/{gid}/users/{user}", headers=admin)).status_code == 204
    assert (await client.delete(f"/groups/{gid}/users/{user}", headers=admin)).status_code == 404
    assert (await client.get(f"/groups/{gid}/users", headers=admin)).json() == {"array": []}
    assert (await client.delete(f"/groups/{gid}", headers=admin)).status_code == 204
    assert (await client.get(f"/groups/{gid}", headers=admin)).status_code == 404
    assert (await client.get(f"/groups/{gid}/users", headers=admin)).status_code == 404


async def test_acl_crud_and_entries(
    client: httpx.AsyncClient, admin: dict[str, str], user: str
) -> None:
    rid = f"dcos:adminrouter:service:{name('web')}"
    gid = name("devs")
    assert (await client.put(f"/groups/{gid}", json={}, headers=admin)).status_code == 201
    assert (
        await client.put(f"/acls/{rid}", json={"description": "web"}, headers=admin)
    ).status_code == 201
    assert (
        await client.put(f"/acls/{rid}", json={"description": "web"}, headers=admin)
    ).status_code == 409
    r = await client.get(f"/acls/{rid}", headers=admin)
    assert r.json() == {"rid": rid, "description": "web", "url": f"/acs/api/v1/acls/{rid}"}
    assert rid in {a["rid"] for a in (await client.get("/acls", headers=admin)).json()["array"]}
    assert (
        await client.patch(f"/acls/{rid}", json={"description": "Web"}, headers=admin)
    ).status_code == 204

    assert (await client.put(f"/acls/{rid}/users/{user}/read", headers=admin)).status_code == 204
    assert (await client.put(f"/acls/{rid}/users/{user}/read", headers=admin)).status_code == 409
    assert (await client.put(f"/acls/{rid}/groups/{gid}/full", headers=admin)).status_code == 204
    assert (await client.put(f"/acls/{rid}/users/{user}/fly", headers=admin)).status_code == 400
    assert (await client.put(f"/acls/{rid}/users/nobody/read", headers=admin)).status_code == 404
    assert (await client.put(f"/acls/{rid}/groups/nogroup/read", headers=admin)).status_code == 404
    assert (
        await client.put(f"/acls/dcos:unknown/users/{user}/read", headers=admin)
    ).status_code == 404

    r = await client.get(f"/acls/{rid}/permissions", headers=admin)
    assert r.json() == {
        "users": [
            {
                "uid": user,
                "userurl": f"/acs/api/v1/users/{user}",
                "actions": [{"name": "read", "url": f"/acs/api/v1/acls/{rid}/users/{user}/read"}],
            }
        ],
        "groups": [
            {
                "gid": gid,
                "groupurl": f"/acs/api/v1/groups/{gid}",
                "actions": [{"name": "full", "url": f"/acs/api/v1/acls/{rid}/groups/{gid}/full"}],
            }
        ],
    }

    assert (await client.delete(f"/acls/{rid}/users/{user}/read", headers=admin)).status_code == 204
    assert (await client.delete(f"/acls/{rid}/users/{user}/read", headers=admin)).status_code == 404
    assert (await client.delete(f"/acls/{rid}/groups/{gid}/full", headers=admin)).status_code == 204
    assert (await client.delete(f"/acls/{rid}", headers=admin)).status_code == 204
    assert (await client.get(f"/acls/{rid}", headers=admin)).status_code == 404


@pytest.mark.parametrize(
    "rid",
    ["dcos:mesos:agent:task:app_id:/dev/web", "dcos:mesos:agent:task:app_id:%252Fprod%252Fweb"],
)
async def test_rids_with_slashes(
    client: httpx.AsyncClient, admin: dict[str, str], user: str, rid: str
) -> None:
    """Sent raw or DC/OS-style (`/` as `%252F`), the rid is the same one and round-trips."""
    stored = rid.replace("%252F", "/")
    assert (await client.put(f"/acls/{rid}", json={}, headers=admin)).status_code == 201
    assert (await client.put(f"/acls/{rid}/users/{user}/read", headers=admin)).status_code == 204
    acl = (await client.get(f"/acls/{rid}", headers=admin)).json()
    assert acl["rid"] == stored
    # The URL it hands out leads back to it.
    assert (await client.get(acl["url"].removeprefix("/acs/api/v1"), headers=admin)).json() == acl


@pytest.mark.parametrize(
    "rid", ["notdcos:x", "dcos:a b", "dcos:tab%09here", "dcos:%ff", "dcos:caf%C3%A9", "dcos:x%2500"]
)
async def test_bad_rids_are_400(client: httpx.AsyncClient, admin: dict[str, str], rid: str) -> None:
    r = await client.put(f"/acls/{rid}", json={}, headers=admin)
    assert r.status_code == 400
    assert "rid" in r.text


async def test_permissions_lists_direct_and_group_grants(
    client: httpx.AsyncClient, admin: dict[str, str], user: str
) -> None:
    direct, inherited = f"dcos:direct:{name('r')}", f"dcos:inherited:{name('r')}"
    gid = name("readers")
    for rid in (direct, inherited):
        await client.put(f"/acls/{rid}", json={"description": rid[:6]}, headers=admin)
    await client.put(f"/groups/{gid}", json={}, headers=admin)
    await client.put(f"/groups/{gid}/users/{user}", headers=admin)
    await client.put(f"/acls/{direct}/users/{user}/read", headers=admin)
    await client.put(f"/acls/{direct}/users/{user}/update", headers=admin)
    await client.put(f"/acls/{inherited}/groups/{gid}/full", headers=admin)

    r = await client.get(f"/users/{user}/permissions", headers=admin)
    assert r.status_code == 200
    body = r.json()
    assert [(p["rid"], [a["name"] for a in p["actions"]]) for p in body["direct"]] == [
        (direct, ["read", "update"])
    ]
    (group_grant,) = body["groups"]
    assert group_grant["rid"] == inherited
    assert group_grant["gid"] == gid
    assert group_grant["groupurl"] == f"/acs/api/v1/groups/{gid}"
    assert group_grant["aclurl"] == f"/acs/api/v1/acls/{inherited}"
    assert [a["name"] for a in group_grant["actions"]] == ["full"]

    r = await client.get(f"/groups/{gid}/permissions", headers=admin)
    assert [p["rid"] for p in r.json()["array"]] == [inherited]
    assert (await client.get("/users/nobody/permissions", headers=admin)).status_code == 404


async def test_policyquery(client: httpx.AsyncClient, admin: dict[str, str], user: str) -> None:
    rid = f"dcos:adminrouter:ops:{name('logs')}"
    await client.put(f"/acls/{rid}", json={}, headers=admin)
    await client.put(f"/acls/{rid}/users/{user}/read", headers=admin)

    async def allowed(**params: str) -> bool:
        r = await client.get("/internal/policyquery", params=params, headers=admin)
        assert r.status_code == 200, r.text
        answer: bool = r.json()["allowed"]
        assert r.json() == {"allowed": answer}
        return answer

    assert await allowed(rid=rid, uid=user, action="read")
    assert not await allowed(rid=rid, uid=user, action="full")
    assert not await allowed(rid=rid, uid="nobody", action="read")
    assert not await allowed(rid="dcos:other", uid=user, action="read")
    assert not await allowed(rid="weird rid?&", uid="we&ird", action="read")  # deny, not 400
    assert await allowed(rid=rid, uid=ADMIN, action="full")  # superuser

    for params in ({"uid": user, "action": "read"}, {"rid": rid, "uid": user, "action": "x"}):
        r = await client.get("/internal/policyquery", params=params, headers=admin)
        assert r.status_code == 400


async def test_policyquery_for_a_dedicated_grant(
    client: httpx.AsyncClient, admin: dict[str, str], user: str, user_headers: dict[str, str]
) -> None:
    params = {"rid": "dcos:superuser", "uid": ADMIN, "action": "full"}
    r = await client.get("/internal/policyquery", params=params, headers=user_headers)
    assert r.status_code == 403
    await client.put("/acls/dcos:iam:policyquery", json={}, headers=admin)
    await client.put(f"/acls/dcos:iam:policyquery/users/{user}/read", headers=admin)
    r = await client.get("/internal/policyquery", params=params, headers=user_headers)
    assert r.json() == {"allowed": True}
    # ... which is not the admin API, but for whether one uid exists (a remote-IAM gateway
    # asks it before trusting a token's uid: app/authn/remote_uids.py).
    assert (await client.get("/users", headers=user_headers)).status_code == 403
    assert (await client.get(f"/users/{ADMIN}", headers=user_headers)).status_code == 200
    assert (await client.get("/users/nobody-here", headers=user_headers)).status_code == 404
    for method, path in [
        ("PATCH", f"/users/{ADMIN}"),
        ("DELETE", f"/users/{ADMIN}"),
        ("PUT", "/users/someone-new"),
        ("GET", f"/users/{ADMIN}/permissions"),
        ("GET", f"/users/{ADMIN}/groups"),
    ]:
        r = await client.request(method, path, headers=user_headers, json={})
        assert r.status_code == 403, (method, path, r.text)


ADMIN_CALLS = [
    ("GET", "/users"),
    ("PUT", "/users/someone"),
    ("GET", "/users/admin"),
    ("PATCH", "/users/admin"),
    ("DELETE", "/users/admin"),
    ("GET", "/users/admin/permissions"),
    ("GET", "/users/admin/groups"),
    ("GET", "/groups"),
    ("PUT", "/groups/g"),
    ("GET", "/groups/superusers"),
    ("PATCH", "/groups/superusers"),
    ("DELETE", "/groups/superusers"),
    ("GET", "/groups/superusers/users"),
    ("PUT", "/groups/superusers/users/admin"),
    ("DELETE", "/groups/superusers/users/admin"),
    ("GET", "/acls"),
    ("PUT", "/acls/dcos:x"),
    ("GET", "/acls/dcos:superuser"),
    ("DELETE", "/acls/dcos:superuser"),
    ("GET", "/acls/dcos:superuser/permissions"),
    ("PUT", "/acls/dcos:superuser/users/admin/full"),
    ("DELETE", "/acls/dcos:superuser/users/admin/full"),
    ("PUT", "/acls/dcos:superuser/groups/superusers/full"),
    ("GET", "/internal/policyquery?rid=dcos:x&uid=admin&action=read"),
    ("POST", "/auth/rotate-keys"),
]


async def test_admin_api_needs_a_token_then_the_superuser_grant(
    client: httpx.AsyncClient, user_headers: dict[str, str]
) -> None:
    bad_token = {"Authorization": "token=eyJhbGciOiJSUzI1NiJ9.eyJ1aWQiOiJhZG1pbiJ9.c2ln"}
    for method, path in ADMIN_CALLS:
        # Malformed bodies too: authentication comes first.
        r = await client.request(method, path, content=b"{oops")
        assert r.status_code == 401, (method, path)
        assert r.headers["www-authenticate"] == "acsjwt"
        r = await client.request(method, path, content=b"{oops", headers=bad_token)
        assert r.status_code == 401, (method, path)
        r = await client.request(method, path, content=b"{oops", headers=user_headers)
        assert r.status_code == 403, (method, path)


async def test_superuser_through_the_group_only(
    client: httpx.AsyncClient, admin: dict[str, str], user: str, user_headers: dict[str, str]
) -> None:
    assert (await client.get("/users", headers=user_headers)).status_code == 403
    assert (await client.put(f"/groups/superusers/users/{user}", headers=admin)).status_code == 204
    assert (await client.get("/users", headers=user_headers)).status_code == 200
    assert (
        await client.delete(f"/groups/superusers/users/{user}", headers=admin)
    ).status_code == 204
    assert (await client.get("/users", headers=user_headers)).status_code == 403


async def test_deleting_a_user_drops_its_grants_and_memberships(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    uid, gid, rid = name("temp"), name("g"), f"dcos:{name('r')}"
    await client.put(f"/users/{uid}", json={}, headers=admin)
    await client.put(f"/groups/{gid}", json={}, headers=admin)
    await client.put(f"/groups/{gid}/users/{uid}", headers=admin)
    await client.put(f"/acls/{rid}", json={}, headers=admin)
    await client.put(f"/acls/{rid}/users/{uid}/full", headers=admin)
    assert (await client.delete(f"/users/{uid}", headers=admin)).status_code == 204
    # Recreated under the same uid, it inherits nothing from its predecessor.
    await client.put(f"/users/{uid}", json={}, headers=admin)
    assert (await client.get(f"/users/{uid}/permissions", headers=admin)).json() == {
        "direct": [],
        "groups": [],
    }
    assert (await client.get(f"/groups/{gid}/users", headers=admin)).json() == {"array": []}


async def test_user_without_password_cannot_log_in(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    uid = name("nopw")
    assert (await client.put(f"/users/{uid}", headers=admin)).status_code == 201  # no body at all
    r = await client.post("/auth/login", json={"uid": uid, "password": "anything goes"})
    assert r.status_code == 401


async def test_oversized_body_is_400(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    r = await client.put(f"/groups/{name('big')}", content=b" " * 70_000 + b"{}", headers=admin)
    assert r.status_code == 400
