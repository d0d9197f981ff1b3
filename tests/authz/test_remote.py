"""The remote IAM authorizer against a real loopback HTTP server playing the policy query."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from app.authz.audit import AUDIT_LOGGER
from app.authz.model import Action, Decision
from app.authz.remote import MAX_RESPONSE_BYTES, RemoteIamAuthorizer
from app.core.credential import TokenProvider
from app.core.errors import Unavailable
from tests.conftest import free_port
from tests.support.fake_iam import FakeIam

SERVICE_TOKEN = "svc-token-s3cr3t"
RID = "dcos:adminrouter:ops:system-logs"
TIMEOUT = 0.3


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # Everything a shared gateway client might carry that must never reach IAM.
    async with httpx.AsyncClient(
        headers={"X-Caller": "leak", "X-Forwarded-For": "10.0.0.9"},
        cookies={"dcos-acs-auth-cookie": "user-jwt"},
        auth=httpx.BasicAuth("user", "password"),
    ) as client:
        yield client


def authorizer(
    url: str,
    client: httpx.AsyncClient,
    *,
    token: TokenProvider = lambda: SERVICE_TOKEN,
    ttl: float = 5.0,
    clock: Clock | None = None,
) -> RemoteIamAuthorizer:
    return RemoteIamAuthorizer(
        url,
        client=client,
        service_token=token,
        ttl=ttl,
        timeout=TIMEOUT,
        clock=clock or Clock(),
    )


async def test_allowed_and_denied(iam: FakeIam, client: httpx.AsyncClient) -> None:
    iam.allowed = {"alice"}
    authz = authorizer(iam.url, client)
    assert await authz.authorize("alice", RID, Action.READ) is Decision.ALLOW
    assert await authz.authorize("bob", RID, Action.READ) is Decision.DENY
    assert [dict(s.url.params)["uid"] for s in iam.seen] == ["alice", "bob"]


async def test_query_is_url_encoded_one_value_per_param(
    iam: FakeIam, client: httpx.AsyncClient
) -> None:
    uid = "alice&uid=root&action=full"
    rid = "dcos:x?rid=dcos:superuser#frag /%2F+"
    await authorizer(iam.url, client).authorize(uid, rid, Action.UPDATE)
    (seen,) = iam.seen
    assert seen.url.params.multi_items() == [("rid", rid), ("uid", uid), ("action", "update")]
    assert b"&uid=root" not in seen.url.query
    assert b"%26uid%3Droot" in seen.url.query
    assert b"%3Frid%3D" in seen.url.query
    assert b"#" not in seen.url.query


async def test_only_the_service_token_reaches_iam(iam: FakeIam, client: httpx.AsyncClient) -> None:
    await authorizer(iam.url, client).authorize("alice", RID, Action.READ)
    (seen,) = iam.seen
    assert seen.headers["authorization"] == f"token={SERVICE_TOKEN}"
    assert set(seen.headers) == {"host", "accept", "authorization"}


async def test_the_token_provider_is_asked_on_every_query(
    iam: FakeIam, client: httpx.AsyncClient
) -> None:
    tokens = iter(["first", "second"])

    async def refreshed() -> str:
        return next(tokens)

    authz = authorizer(iam.url, client, token=refreshed)
    await authz.authorize("alice", RID, Action.READ)
    await authz.authorize("bob", RID, Action.READ)
    assert [s.headers["authorization"] for s in iam.seen] == ["token=first", "token=second"]


def _raise_with_secret() -> str:
    raise RuntimeError(f"login failed for token {SERVICE_TOKEN}")


@pytest.mark.parametrize("token", [_raise_with_secret, lambda: ""])
async def test_no_service_token_fails_closed_without_asking(
    iam: FakeIam, client: httpx.AsyncClient, token: TokenProvider
) -> None:
    with pytest.raises(Unavailable, match="no service token") as info:
        await authorizer(iam.url, client, token=token).authorize("alice", RID, Action.READ)
    assert SERVICE_TOKEN not in info.value.message
    assert iam.seen == []


@pytest.mark.parametrize(
    ("status", "body", "why"),
    [
        (500, b'{"allowed": true}', "HTTP 500"),
        (403, b'{"allowed": true}', "HTTP 403"),
        (302, b'{"allowed": true}', "HTTP 302"),
        (200, b"<html>not json</html>", "not JSON"),
        (200, b'{"allowed": tru', "not JSON"),
        (200, b"", "not JSON"),
        (200, b'{"allowed": "yes"}', "no boolean 'allowed'"),
        (200, b'{"allowed": "true"}', "no boolean 'allowed'"),
        (200, b'{"allowed": 1}', "no boolean 'allowed'"),
        (200, b'{"allowed": null}', "no boolean 'allowed'"),
        (200, b'{"Allowed": true}', "no boolean 'allowed'"),
        (200, b"{}", "no boolean 'allowed'"),
        (200, b"[true]", "no boolean 'allowed'"),
        (200, b"true", "no boolean 'allowed'"),
        (200, b'{"allowed": true' + b" " * MAX_RESPONSE_BYTES + b"}", "larger than"),
    ],
)
async def test_bad_answers_fail_closed(
    iam: FakeIam, client: httpx.AsyncClient, status: int, body: bytes, why: str
) -> None:
    iam.status, iam.body = status, body
    with pytest.raises(Unavailable, match=f"^IAM policy query failed: .*{why}"):
        await authorizer(iam.url, client).authorize("alice", RID, Action.READ)


async def test_a_stall_beyond_the_timeout_fails_closed(
    iam: FakeIam, client: httpx.AsyncClient
) -> None:
    iam.allowed, iam.stall = {"alice"}, 1.0
    with pytest.raises(Unavailable, match="timed out"):
        await authorizer(iam.url, client).authorize("alice", RID, Action.READ)


async def test_iam_down_fails_closed(client: httpx.AsyncClient) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(Unavailable, match="ConnectError"):
        await authorizer(url, client).authorize("alice", RID, Action.READ)


async def test_failures_are_not_cached(iam: FakeIam, client: httpx.AsyncClient) -> None:
    iam.allowed, iam.status = {"alice"}, 500
    authz = authorizer(iam.url, client)
    with pytest.raises(Unavailable):
        await authz.authorize("alice", RID, Action.READ)
    iam.status = 200
    assert await authz.authorize("alice", RID, Action.READ) is Decision.ALLOW
    assert len(iam.seen) == 2


@pytest.mark.parametrize("allowed", [True, False])
async def test_ttl_cache_hit_then_expiry(
    iam: FakeIam, client: httpx.AsyncClient, allowed: bool
) -> None:
    iam.allowed = {"alice"} if allowed else set()
    expected = Decision.ALLOW if allowed else Decision.DENY
    clock = Clock()
    authz = authorizer(iam.url, client, ttl=5.0, clock=clock)
    assert await authz.authorize("alice", RID, Action.READ) is expected
    clock.now += 4.9
    assert await authz.authorize("alice", RID, Action.READ) is expected
    assert len(iam.seen) == 1
    clock.now += 0.1
    iam.allowed = set() if allowed else {"alice"}  # changed at IAM: seen once the entry expires
    assert await authz.authorize("alice", RID, Action.READ) is not expected
    assert len(iam.seen) == 2


async def test_no_reuse_across_users_rids_or_actions(
    iam: FakeIam, client: httpx.AsyncClient
) -> None:
    iam.allowed = {"alice"}
    authz = authorizer(iam.url, client)
    assert await authz.authorize("alice", RID, Action.READ) is Decision.ALLOW
    assert await authz.authorize("mallory", RID, Action.READ) is Decision.DENY
    assert await authz.authorize("alice", RID, Action.FULL) is Decision.ALLOW
    assert await authz.authorize("alice", f"{RID}:x", Action.READ) is Decision.ALLOW
    assert len(iam.seen) == 4


async def test_zero_ttl_asks_every_time(iam: FakeIam, client: httpx.AsyncClient) -> None:
    authz = authorizer(iam.url, client, ttl=0)
    for _ in range(3):
        await authz.authorize("alice", RID, Action.READ)
    assert len(iam.seen) == 3


async def test_bounded_cache(iam: FakeIam, client: httpx.AsyncClient) -> None:
    authz = RemoteIamAuthorizer(
        iam.url, client=client, service_token=lambda: SERVICE_TOKEN, max_entries=2
    )
    for uid in ["a", "b", "c", "a"]:
        await authz.authorize(uid, RID, Action.READ)
    assert [dict(s.url.params)["uid"] for s in iam.seen] == ["a", "b", "c", "a"]


async def test_base_url_with_a_trailing_slash(iam: FakeIam, client: httpx.AsyncClient) -> None:
    iam.allowed = {"alice"}
    authz = authorizer(iam.url + "/", client)
    assert await authz.authorize("alice", RID, Action.READ) is Decision.ALLOW


@pytest.mark.parametrize(
    "url", ["ftp://iam", "iam:8101", "http://", "http://iam/?x=1", "http://iam/#f"]
)
async def test_iam_url_is_validated(client: httpx.AsyncClient, url: str) -> None:
    with pytest.raises(ValueError, match="IAM URL"):
        RemoteIamAuthorizer(url, client=client, service_token=lambda: SERVICE_TOKEN)


async def test_decisions_are_audited_and_the_token_is_never_logged(
    iam: FakeIam, client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    iam.allowed = {"alice"}
    authz = authorizer(iam.url, client)
    await authz.authorize("alice", RID, Action.READ)
    await authz.authorize("alice", RID, Action.READ)
    await authz.authorize("bob", RID, Action.READ)
    iam.status = 500
    with pytest.raises(Unavailable):
        await authz.authorize("carol", RID, Action.READ)
    audit = [r.getMessage() for r in caplog.records if r.name == AUDIT_LOGGER]
    assert audit == [
        f'type=audit object={RID} action=read result=allow reason="IAM PQ response" uid=alice',
        f"type=audit object={RID} action=read result=allow "
        'reason="IAM PQ response (cached)" uid=alice',
        f'type=audit object={RID} action=read result=deny reason="IAM PQ response" uid=bob',
    ]
    assert any("failed for uid='carol'" in r.getMessage() for r in caplog.records)
    assert not any(SERVICE_TOKEN in r.getMessage() for r in caplog.records)
