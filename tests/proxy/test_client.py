"""`HttpUpstream` over httpx.MockTransport: the exact request it builds, its timeouts, and the
mapping of every httpx failure to an `UpstreamError`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from app.proxy import (
    HttpUpstream,
    UpstreamBroken,
    UpstreamBusy,
    UpstreamCall,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnreachable,
    new_upstream_client,
)


async def token(audience: str) -> str:
    return "gw-token"


def call(path: str = "/v1/range/", accept: str = "text/plain") -> UpstreamCall:
    return UpstreamCall(
        method="GET",
        path=path,
        query=b"skip_prev=5",
        headers=((b"accept", accept.encode()), (b"accept-encoding", b"gzip")),
        node="S1",
        uid="alice",
        client="10.1.1.1",
        scheme="http",
        token=token,
    )


async def test_the_request_carries_only_our_headers_and_the_right_timeout() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        headers = {"set-cookie": "s=1; Path=/"}
        return httpx.Response(200, headers=headers, stream=httpx.ByteStream(b"ok"))

    client = new_upstream_client(transport=httpx.MockTransport(handler))
    async with client:
        upstream = HttpUpstream(client)
        for c in (call(), call("/v1/stream/"), call("/v2/component", "text/event-stream")):
            response = await upstream.open("http://10.0.0.5:61001", c)
            assert b"".join([chunk async for chunk in response.chunks()]) == b"ok"
            await response.aclose()
        assert not client.cookies  # nothing a node sets is kept for the next caller
    range_, follow, v2_follow = seen
    assert str(range_.url) == "http://10.0.0.5:61001/v1/range/?skip_prev=5"
    assert range_.headers.raw == [
        (b"Host", b"10.0.0.5:61001"),
        (b"accept", b"text/plain"),
        (b"x-forwarded-for", b"10.1.1.1"),
        (b"x-real-ip", b"10.1.1.1"),
        (b"x-forwarded-proto", b"http"),
        (b"x-logway-uid", b"alice"),
        (b"authorization", b"token=gw-token"),
    ]
    assert range_.extensions["timeout"]["read"] == 60.0
    assert follow.extensions["timeout"]["read"] is None
    assert v2_follow.extensions["timeout"]["read"] is None
    assert follow.extensions["timeout"]["connect"] == 5.0


@pytest.mark.parametrize(
    ("raised", "mapped", "status"),
    [
        (httpx.ConnectError("refused"), UpstreamUnreachable, 502),
        (httpx.ConnectTimeout("slow"), UpstreamTimeout, 504),
        (httpx.ReadTimeout("slow"), UpstreamTimeout, 504),
        (httpx.PoolTimeout("full"), UpstreamBusy, 503),
        (httpx.RemoteProtocolError("bad"), UpstreamBroken, 502),
        (httpx.ReadError("reset"), UpstreamBroken, 502),
    ],
)
async def test_httpx_failures_are_mapped(
    raised: httpx.HTTPError, mapped: type[UpstreamError], status: int
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise raised

    async with new_upstream_client(transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(mapped) as caught:
            await HttpUpstream(client).open("http://10.0.0.5:61001", call())
    assert caught.value.status == status
    assert caught.value.node == "S1"
    assert "10.0.0.5" not in caught.value.message


async def test_a_body_cut_short_raises_upstream_broken() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"first"
        raise httpx.ReadError("reset")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body())

    async with new_upstream_client(transport=httpx.MockTransport(handler)) as client:
        response = await HttpUpstream(client).open("http://10.0.0.5:61001", call())
        chunks = response.chunks()
        assert await anext(chunks) == b"first"
        with pytest.raises(UpstreamBroken):
            await anext(chunks)
        await response.aclose()
