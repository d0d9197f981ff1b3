"""Key rotation over HTTP, and the IAM behind the real embedded authorizer."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from app.iam import Iam, IamSettings
from tests.iam.conftest import (
    ADMIN,
    ADMIN_PASSWORD,
    Responses,
    Served,
    auth,
    http,
    login,
    run_server,
)


def kid_of(token: str) -> str:
    kid: str = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))["kid"]
    return kid


async def test_rotate_keys(isolated_client: httpx.AsyncClient) -> None:
    client = isolated_client
    before = await login(client, ADMIN, ADMIN_PASSWORD)
    (old,) = (await client.get("/auth/jwks")).json()["keys"]

    r = await client.post("/auth/rotate-keys", headers=auth(before))
    assert r.status_code == 200
    new_kid = r.json()["kid"]
    assert new_kid != old["kid"]
    assert [k["kid"] for k in (await client.get("/auth/jwks")).json()["keys"]] == [
        new_kid,
        old["kid"],
    ]
    # The token from before the rotation still works; new tokens carry the new kid.
    assert (await client.get("/users", headers=auth(before))).status_code == 200
    after = await login(client, ADMIN, ADMIN_PASSWORD)
    assert kid_of(after) == new_kid
    assert kid_of(before) == old["kid"]
    assert (await client.get("/users", headers=auth(after))).status_code == 200
    again = await client.post("/auth/rotate-keys", headers=auth(after))
    assert again.status_code == 429, again.text
    assert 0 < int(again.headers["retry-after"]) <= 60


@pytest.fixture
def real_authorizer_server(settings: IamSettings) -> Iterator[Served]:
    acl = pytest.importorskip("app.authz.acl")
    iam = Iam(settings)
    with run_server(iam, acl.AclAuthorizer(iam.store)) as served:
        yield served


@pytest.fixture
async def real_client(
    real_authorizer_server: Served, responses: Responses
) -> AsyncIterator[httpx.AsyncClient]:
    async with http(real_authorizer_server, responses) as c:
        yield c


async def test_with_the_embedded_acl_authorizer(real_client: httpx.AsyncClient) -> None:
    """The seam: the store as `GrantSource`, hierarchical matching decided by app.authz."""
    client = real_client
    admin = auth(await login(client, ADMIN, ADMIN_PASSWORD))
    app_rid = "dcos:mesos:agent:task:app_id:/dev"
    await client.put("/users/dev", json={"password": "developer pw"}, headers=admin)
    await client.put(f"/acls/{app_rid}", json={}, headers=admin)
    await client.put(f"/acls/{app_rid}/users/dev/read", headers=admin)

    async def allowed(rid: str, action: str = "read") -> bool:
        params = {"rid": rid, "uid": "dev", "action": action}
        r = await client.get("/internal/policyquery", params=params, headers=admin)
        assert r.status_code == 200, r.text
        answer: bool = r.json()["allowed"]
        return answer

    assert await allowed(app_rid + "/web")
    assert not await allowed("dcos:mesos:agent:task:app_id:/devops")
    assert not await allowed(app_rid, "full")
    # A revoke is seen by the very next decision (the store's generation changed).
    await client.delete(f"/acls/{app_rid}/users/dev/read", headers=admin)
    assert not await allowed(app_rid + "/web")
    dev = auth(await login(client, "dev", "developer pw"))
    assert (await client.get("/users", headers=dev)).status_code == 403
