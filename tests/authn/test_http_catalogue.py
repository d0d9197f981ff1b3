"""Every JWT attack vector of the catalogue (reference/security.md §1), sent over HTTP as
`Authorization: token=…`, `Bearer …` and the cookie: each is a 401 with
`WWW-Authenticate: acsjwt` and a body that echoes nothing of the token."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from app.authn.authenticator import JwtAuthenticator
from app.authn.verification_keys import KeySet, StaticKeys
from tests.authn.conftest import Clock, Keys
from tests.authn.test_dependency import create_app
from tests.authn.test_verify import VECTORS, Vector

CARRIERS = {
    "token=": lambda t: {"headers": {"Authorization": f"token={t}"}},
    "Bearer": lambda t: {"headers": {"Authorization": f"Bearer {t}"}},
    "cookie": lambda t: {"headers": {"Cookie": f"dcos-acs-auth-cookie={t}"}},
}


@pytest.fixture
def auth(keys: Keys, clock: Clock) -> JwtAuthenticator:
    """Two published IAM keys, selected by kid (as in test_verify)."""
    keyset = KeySet.from_jwks({"keys": [keys.iam.jwk(), keys.iam2.jwk()]})
    return JwtAuthenticator(StaticKeys(keyset), clock=clock)


@pytest.fixture
async def client(auth: JwtAuthenticator) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(auth))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as c:
        yield c


# Space around a Bearer token or a cookie value is the carrier's own separator, not part of
# the token, so " <good token>" is only hostile after `token=`.
CASES = [
    pytest.param(p.values[0], carrier, id=f"{p.id}-{carrier}")
    for p in VECTORS
    for carrier in sorted(CARRIERS)
    if not (p.id == "J16-space" and carrier != "token=")
]


@pytest.mark.parametrize(("build", "carrier"), CASES)
async def test_every_vector_is_401_acsjwt(
    client: httpx.AsyncClient, keys: Keys, build: Vector, carrier: str
) -> None:
    token = build(keys)
    r = await client.get("/whoami", **CARRIERS[carrier](token))  # type: ignore[arg-type]
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "acsjwt"
    assert not token or token not in r.text


@pytest.mark.parametrize("carrier", sorted(CARRIERS))
async def test_the_good_token_passes_every_carrier(
    client: httpx.AsyncClient, keys: Keys, carrier: str
) -> None:
    r = await client.get("/whoami", **CARRIERS[carrier](keys.iam.token()))  # type: ignore[arg-type]
    assert r.status_code == 200
    assert r.json() == {"uid": "alice"}
