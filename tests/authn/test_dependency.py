"""End to end over real sockets: fake IAM (JWKS) + a FastAPI app guarded by `require_identity`,
both under uvicorn on 127.0.0.1, called with httpx.

No `from __future__ import annotations` here: FastAPI must see the `Annotated` alias built
inside `create_app` as an object, not as a string it would look up in the module's globals.
"""

import time
from collections.abc import AsyncIterator
from typing import Annotated

import httpx
import pytest
from fastapi import Depends, FastAPI

from app.authn.authenticator import Authenticator, Identity, JwtAuthenticator, NoAuth
from app.authn.dependency import require_identity
from app.authn.extract import AUTH_COOKIE
from app.core.problems import install_error_handlers
from tests.authn.conftest import Keys
from tests.support.fake_iam import FakeIam
from tests.support.servers import serve


def create_app(authenticator: Authenticator) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    IdentityDep = Annotated[Identity, Depends(require_identity(authenticator))]

    @app.get("/whoami")
    async def whoami(identity: IdentityDep) -> dict[str, str]:
        return {"uid": identity.uid}

    return app


async def call(authenticator: Authenticator, **kwargs: object) -> httpx.Response:
    async with serve(create_app(authenticator)) as base_url, httpx.AsyncClient() as client:
        return await client.get(f"{base_url}/whoami", **kwargs)  # type: ignore[arg-type]


@pytest.fixture
async def jwks_client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
def jwt_auth(iam: FakeIam, keys: Keys, jwks_client: httpx.AsyncClient) -> JwtAuthenticator:
    iam.publish(keys.iam)
    return JwtAuthenticator.from_jwks_url(
        iam.jwks_url, client=jwks_client, allowed_uids={"alice", "gateway"}
    )


def token(keys: Keys, uid: str = "alice") -> str:
    return keys.iam.token({"uid": uid, "exp": int(time.time()) + 300})


def assert_401(response: httpx.Response, body: str) -> None:
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "acsjwt"
    assert response.text == body + "\n"


async def test_end_to_end(jwt_auth: JwtAuthenticator, keys: Keys, iam: FakeIam) -> None:
    app = create_app(jwt_auth)
    good = token(keys)
    forged = keys.attacker.token({"uid": "alice", "exp": int(time.time()) + 300}, kid="iam-1")
    async with serve(app) as base_url, httpx.AsyncClient(base_url=base_url) as client:
        assert_401(await client.get("/whoami"), "Authentication required")
        assert_401(await client.get("/whoami", params={"token": good}), "Authentication required")

        response = await client.get("/whoami", headers={"Authorization": f"token={forged}"})
        assert_401(response, "Invalid authentication token")
        assert forged.split(".")[2] not in response.text

        response = await client.get("/whoami", headers={"Authorization": f"Basic {good}"})
        assert_401(response, "Authorization header must be 'token=<JWT>' or 'Bearer <JWT>'")

        bob = token(keys, uid="bob")
        response = await client.get("/whoami", headers={"Authorization": f"Bearer {bob}"})
        assert_401(response, "uid not allowed")

        for headers in (
            {"Authorization": f"token={good}"},
            {"Authorization": f"Bearer {good}"},
            {"Cookie": f"{AUTH_COOKIE}={good}"},
        ):
            response = await client.get("/whoami", headers=headers)
            assert response.status_code == 200, headers
            assert response.json() == {"uid": "alice"}

        # Header wins: a bad header with a good cookie is a 401.
        response = await client.get(
            "/whoami",
            headers={"Authorization": f"token={forged}", "Cookie": f"{AUTH_COOKIE}={good}"},
        )
        assert_401(response, "Invalid authentication token")
    assert iam.jwks_hits == 1


async def test_keys_never_loaded_is_503(
    jwt_auth: JwtAuthenticator, keys: Keys, iam: FakeIam
) -> None:
    iam.status = 500
    response = await call(jwt_auth, headers={"Authorization": f"token={token(keys)}"})
    assert response.status_code == 503
    assert "www-authenticate" not in response.headers
    # No credentials is still a 401, keys or no keys.
    assert_401(await call(jwt_auth), "Authentication required")


async def test_no_auth_mode() -> None:
    response = await call(NoAuth())
    assert response.status_code == 200
    assert response.json() == {"uid": "no-auth"}
