"""A remote IAM's uid lookup (`RemoteUidDirectory`) under `KnownUids`: the fake IAM in process.
End to end (a replica over a real embedded IAM): tests/gateway/test_remote_iam.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.requests import Request

from app.authn import Identity, Reason, TokenRejected
from app.authn.known import KnownUids
from app.authn.remote_uids import RemoteUidDirectory
from app.core.errors import Unavailable
from tests.support.fake_iam import FakeIam

SERVICE_TOKEN = "svc-token-s3cr3t"
IAM_URL = "http://iam.test"


class Generation:
    """The change signal: moves when the test says (a TTL passing)."""

    def __init__(self) -> None:
        self.value = 0

    def __call__(self) -> int:
        return self.value


class Verified:
    """Stands for the signature check: every request is `uid`'s valid token."""

    def __init__(self, uid: str) -> None:
        self.uid = uid

    async def authenticate(self, request: Request) -> Identity | None:
        return Identity(self.uid, token="t")


@pytest.fixture
def iam() -> FakeIam:
    return FakeIam(url=IAM_URL, users={"alice", "a/b?c"})


@pytest.fixture
async def client(iam: FakeIam) -> AsyncIterator[httpx.AsyncClient]:
    # Carries what a shared client might: none of it may reach the IAM.
    async with httpx.AsyncClient(
        transport=iam.transport(), cookies={"dcos-acs-auth-cookie": "user-jwt"}
    ) as client:
        yield client


def known(client: httpx.AsyncClient, uid: str = "alice", **kw: object) -> KnownUids:
    directory = RemoteUidDirectory(
        IAM_URL,
        client=client,
        service_token=lambda: SERVICE_TOKEN,
        generation=kw.pop("generation", Generation()),  # type: ignore[arg-type]
        timeout=1.0,
    )
    return KnownUids(Verified(uid), directory)  # type: ignore[arg-type]


def request() -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "headers": []})


async def test_a_uid_the_iam_holds_passes_and_one_it_does_not_is_refused(
    iam: FakeIam, client: httpx.AsyncClient
) -> None:
    identity = await known(client, "alice").authenticate(request())
    assert identity is not None
    assert identity.uid == "alice"
    with pytest.raises(TokenRejected) as refused:
        await known(client, "mallory").authenticate(request())
    assert refused.value.reason is Reason.UNKNOWN_UID


async def test_the_lookup_carries_the_service_token_and_the_uid_as_one_segment(
    iam: FakeIam, client: httpx.AsyncClient
) -> None:
    assert await known(client).exists("a/b?c")
    sent = iam.last
    assert sent.url.raw_path == b"/acs/api/v1/users/a%2Fb%3Fc"
    assert sent.headers["authorization"] == f"token={SERVICE_TOKEN}"
    assert "cookie" not in sent.headers


async def test_answers_are_reused_until_the_signal_moves(
    iam: FakeIam, client: httpx.AsyncClient
) -> None:
    generation = Generation()
    uids = known(client, generation=generation)
    assert await uids.exists("alice")
    assert not await uids.exists("bob")
    iam.users = {"bob"}  # alice deleted, bob created: not seen until the TTL passes
    assert await uids.exists("alice")
    assert not await uids.exists("bob")
    assert len(iam.seen) == 2
    generation.value += 1
    assert not await uids.exists("alice")
    assert await uids.exists("bob")
    assert len(iam.seen) == 4


@pytest.mark.parametrize("status", [401, 403, 500, 302])
async def test_any_other_answer_is_unavailable_never_exists(
    iam: FakeIam, client: httpx.AsyncClient, status: int
) -> None:
    iam.status, iam.body = status, b"{}"
    uids = known(client)
    for _ in range(2):  # and is not cached
        with pytest.raises(Unavailable, match="IAM uid lookup failed"):
            await uids.exists("alice")
    assert len(iam.seen) == 2


async def test_an_iam_that_is_down_is_unavailable(iam: FakeIam, client: httpx.AsyncClient) -> None:
    iam.down = True
    with pytest.raises(Unavailable, match="IAM uid lookup failed"):
        await known(client).authenticate(request())


async def test_no_service_token_is_unavailable_without_asking(
    iam: FakeIam, client: httpx.AsyncClient
) -> None:
    def broken() -> str:
        raise RuntimeError(f"login failed with {SERVICE_TOKEN}")

    directory = RemoteUidDirectory(
        IAM_URL, client=client, service_token=broken, generation=Generation()
    )
    with pytest.raises(Unavailable) as failed:
        await directory.user_exists("alice")
    assert SERVICE_TOKEN not in str(failed.value)
    assert iam.seen == []
