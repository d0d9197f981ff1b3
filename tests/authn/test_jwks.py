"""JWKS source (J19): against a real loopback HTTP server, plus MockTransport unit tests for
the failure shapes a real server would need contortions to produce."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

import httpx
import pytest

from app.authn.authenticator import JwtAuthenticator
from app.authn.errors import Reason, TokenRejected
from app.authn.jwks import MAX_JWKS_BYTES, MIN_REFRESH_INTERVAL, JwksSource
from app.authn.verify import RS256Key
from app.core.errors import Unavailable
from tests.authn.conftest import Clock, Keys
from tests.authn.tokens import Signer
from tests.support.fake_iam import FakeIam

COOLDOWN = MIN_REFRESH_INTERVAL
TTL = 600.0


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def rs256(signer: Signer) -> RS256Key:
    return RS256Key(signer.private_key.public_key())


async def reason_of(call: Awaitable[object]) -> Reason:
    with pytest.raises(TokenRejected) as info:
        await call
    return info.value.reason


# --- against a real HTTP server ----------------------------------------------------------


@pytest.fixture
def source(iam: FakeIam, client: httpx.AsyncClient, clock: Clock) -> JwksSource:
    return JwksSource(iam.jwks_url, client=client, ttl=TTL, clock=clock)


async def test_loads_lazily_once(iam: FakeIam, source: JwksSource, keys: Keys) -> None:
    iam.publish(keys.iam)
    assert iam.jwks_hits == 0
    for _ in range(5):
        assert await source.key_for("iam-1") == rs256(keys.iam)
    assert iam.jwks_hits == 1


async def test_rotation_new_kid_one_refresh(
    iam: FakeIam, source: JwksSource, keys: Keys, clock: Clock
) -> None:
    iam.publish(keys.iam)
    auth = JwtAuthenticator(source)
    await auth.verify(keys.iam.token({"uid": "alice", "exp": 2**31}))
    assert iam.jwks_hits == 1

    iam.publish(keys.iam, keys.iam2)  # the IAM rotates in a new key
    new = keys.iam2.token({"uid": "alice", "exp": 2**31})
    # Still inside the cooldown that began with the first load: no fetch, rejected.
    clock.advance(COOLDOWN - 1)
    assert await reason_of(auth.verify(new)) == Reason.UNKNOWN_KID
    assert iam.jwks_hits == 1
    clock.advance(1)
    assert (await auth.verify(new)).uid == "alice"
    assert iam.jwks_hits == 2
    assert (await auth.verify(new)).uid == "alice"
    assert iam.jwks_hits == 2


async def test_flood_of_unknown_kids_costs_one_fetch_per_cooldown(
    iam: FakeIam, source: JwksSource, keys: Keys, clock: Clock
) -> None:
    iam.publish(keys.iam)
    auth = JwtAuthenticator(source)
    await source.key_for("iam-1")
    clock.advance(COOLDOWN)

    async def flood(n: int) -> list[BaseException | object]:
        tokens = [
            keys.iam.token({"uid": "a", "exp": 2**31}, kid=uuid.uuid4().hex) for _ in range(n)
        ]
        return await asyncio.gather(*(auth.verify(t) for t in tokens), return_exceptions=True)

    for outcome in await flood(200):
        assert isinstance(outcome, TokenRejected)
        assert outcome.reason == Reason.UNKNOWN_KID
    assert iam.jwks_hits == 2
    await flood(50)
    clock.advance(COOLDOWN - 1)
    await flood(50)
    assert iam.jwks_hits == 2
    clock.advance(1)
    await flood(50)
    assert iam.jwks_hits == 3


@pytest.mark.parametrize(
    "break_it",
    [
        pytest.param(lambda iam, keys: setattr(iam, "status", 500), id="500"),
        pytest.param(lambda iam, keys: setattr(iam, "status", 404), id="404"),
        pytest.param(lambda iam, keys: setattr(iam, "body", b"<html>oops</html>"), id="html"),
        pytest.param(lambda iam, keys: setattr(iam, "body", b'{"keys": [tr'), id="truncated"),
        pytest.param(lambda iam, keys: setattr(iam, "jwks", {"keys": "x"}), id="not-jwks"),
        pytest.param(lambda iam, keys: setattr(iam, "jwks", {"keys": []}), id="empty"),
        pytest.param(lambda iam, keys: iam.publish(keys.weak), id="only-weak-key"),
        pytest.param(
            lambda iam, keys: setattr(iam, "body", b" " * (MAX_JWKS_BYTES + 1)), id="too-big"
        ),
    ],
)
async def test_failed_fetch_keeps_last_good_set(
    iam: FakeIam,
    source: JwksSource,
    keys: Keys,
    clock: Clock,
    break_it: Callable[[FakeIam, Keys], None],
) -> None:
    iam.publish(keys.iam)
    assert await source.key_for("iam-1") == rs256(keys.iam)
    break_it(iam, keys)
    clock.advance(TTL)  # stale: the next request refreshes, fails, and keeps the old set
    assert await source.key_for("iam-1") == rs256(keys.iam)
    assert iam.jwks_hits == 2
    clock.advance(COOLDOWN)
    assert await reason_of(source.key_for("iam-2")) == Reason.UNKNOWN_KID
    assert iam.jwks_hits == 3
    assert await source.key_for("iam-1") == rs256(keys.iam)


async def test_ttl_refresh_drops_removed_key(
    iam: FakeIam, source: JwksSource, keys: Keys, clock: Clock
) -> None:
    iam.publish(keys.iam, keys.iam2)
    assert await source.key_for("iam-1") == rs256(keys.iam)
    iam.publish(keys.iam2)
    clock.advance(TTL - 1)
    assert await source.key_for("iam-1") == rs256(keys.iam)
    assert iam.jwks_hits == 1
    clock.advance(1)
    assert await reason_of(source.key_for("iam-1")) == Reason.UNKNOWN_KID
    assert iam.jwks_hits == 2


async def test_never_loaded_is_unavailable_then_recovers(
    iam: FakeIam, source: JwksSource, keys: Keys, clock: Clock
) -> None:
    iam.status = 503
    with pytest.raises(Unavailable):
        await source.key_for("iam-1")
    with pytest.raises(Unavailable):
        await source.key_for("iam-1")
    assert iam.jwks_hits == 1  # the cooldown applies to failures too
    iam.publish(keys.iam)
    clock.advance(COOLDOWN)
    assert await source.key_for("iam-1") == rs256(keys.iam)
    assert iam.jwks_hits == 2


async def test_refresh_ignores_cooldown(iam: FakeIam, source: JwksSource, keys: Keys) -> None:
    iam.status = 500
    assert await source.refresh() is False
    iam.publish(keys.iam)
    assert await source.refresh() is True
    assert source.keys is not None
    assert source.keys.select("iam-1") == rs256(keys.iam)
    assert iam.jwks_hits == 2


async def test_unreachable_server(client: httpx.AsyncClient, clock: Clock) -> None:
    from tests.conftest import free_port

    url = f"http://127.0.0.1:{free_port()}/jwks"
    source = JwksSource(url, client=client, clock=clock)
    with pytest.raises(Unavailable):
        await source.key_for("iam-1")


# --- MockTransport unit tests ------------------------------------------------------------

Handler = Callable[[httpx.Request], Coroutine[Any, Any, httpx.Response]]
MockSource = Callable[[Handler], JwksSource]


@pytest.fixture
async def mock_source(clock: Clock) -> AsyncIterator[MockSource]:
    clients: list[httpx.AsyncClient] = []

    def build(handler: Handler) -> JwksSource:
        clients.append(httpx.AsyncClient(transport=httpx.MockTransport(handler)))
        return JwksSource("https://iam.example/jwks", client=clients[-1], clock=clock)

    yield build
    for client in clients:
        await client.aclose()


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://iam/jwks", "iam/jwks", "http:///jwks", "gopher://iam:70/_"],
)
async def test_only_http_urls(client: httpx.AsyncClient, url: str) -> None:
    with pytest.raises(ValueError, match="http"):
        JwksSource(url, client=client)


async def test_intervals_validated(client: httpx.AsyncClient) -> None:
    with pytest.raises(ValueError, match="min_refresh_interval"):
        JwksSource("http://iam/jwks", client=client, min_refresh_interval=0)
    with pytest.raises(ValueError, match="min_refresh_interval"):
        JwksSource("http://iam/jwks", client=client, ttl=10, min_refresh_interval=30)


async def test_redirects_are_not_followed(
    keys: Keys, clock: Clock, mock_source: MockSource
) -> None:
    seen: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path == "/jwks":
            return httpx.Response(302, headers={"Location": "https://evil.example/keys"})
        return httpx.Response(200, json={"keys": [keys.attacker.jwk(kid="iam-1")]})

    source = mock_source(handler)
    with pytest.raises(Unavailable):
        await source.key_for("iam-1")
    assert seen == ["/jwks"]


async def test_timeout_keeps_last_good(keys: Keys, clock: Clock, mock_source: MockSource) -> None:
    calls = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(200, json={"keys": [keys.iam.jwk()]})

    source = mock_source(handler)
    await source.key_for("iam-1")
    clock.advance(TTL)
    assert await source.key_for("iam-1") == rs256(keys.iam)
    assert calls == 2


async def test_deep_json_is_a_failed_fetch(
    keys: Keys, clock: Clock, mock_source: MockSource
) -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"[" * 100_000 + b"]" * 100_000)

    with pytest.raises(Unavailable):
        await mock_source(handler).key_for("iam-1")


class GatedJwks:
    """A MockTransport handler serving `document`; from call `hold_from` on, it answers only
    once `release` is set."""

    def __init__(self, document: object, *, hold_from: int) -> None:
        self.document = document
        self.hold_from = hold_from
        self.calls = 0
        self.release = asyncio.Event()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        if self.calls >= self.hold_from:
            await self.release.wait()
        return httpx.Response(200, json=self.document)


async def test_first_load_is_single_flight(keys: Keys, mock_source: MockSource) -> None:
    iam = GatedJwks({"keys": [keys.iam.jwk()]}, hold_from=1)
    source = mock_source(iam)
    waiters = [asyncio.create_task(source.key_for("iam-1")) for _ in range(50)]
    await asyncio.sleep(0.01)
    iam.release.set()
    assert set(await asyncio.gather(*waiters)) == {rs256(keys.iam)}
    assert iam.calls == 1


async def test_stale_set_is_served_while_one_request_refreshes(
    keys: Keys, clock: Clock, mock_source: MockSource
) -> None:
    iam = GatedJwks({"keys": [keys.iam.jwk()]}, hold_from=2)
    source = mock_source(iam)
    await source.key_for("iam-1")
    clock.advance(TTL)
    refreshing = asyncio.create_task(source.key_for("iam-1"))
    await asyncio.sleep(0.01)
    assert not refreshing.done()
    # Known kid, stale set, refresh in flight: answered at once from the set we have.
    assert await asyncio.wait_for(source.key_for("iam-1"), 0.5) == rs256(keys.iam)
    iam.release.set()
    assert await refreshing == rs256(keys.iam)
    assert iam.calls == 2
