"""`KeepAliveTransport` against real sockets: a small asyncio server on loopback answers each
request as the test scripts it, and counts the connections it accepted."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from app.proxy import HttpUpstream, ProxyMetrics, RelayResponse, UpstreamCall
from app.proxy.client import new_upstream_client
from app.proxy.transport import HIGH_WATER, WHOLE_BODY, KeepAliveTransport

Reply = Callable[[bytes, asyncio.StreamWriter], Awaitable[bool]]  # False: close after it

HOST = "127.0.0.1"


class Server:
    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.connections = 0
        self.requests: list[bytes] = []
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.requests.append(head)
                if not await self.reply(head, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def serving(reply: Reply) -> AsyncIterator[Server]:
    server = Server(reply)
    listening = await asyncio.start_server(server.handle, HOST, 0)
    server.port = listening.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listening.close()


def transport(**limits: float) -> KeepAliveTransport:
    return KeepAliveTransport(
        fallback=httpx.AsyncHTTPTransport(),
        max_connections=int(limits.get("max_connections", 10)),
        max_keepalive=int(limits.get("max_keepalive", 10)),
        keepalive_expiry=limits.get("keepalive_expiry", 5.0),
    )


async def get(client: httpx.AsyncClient, port: int, path: str = "/") -> httpx.Response:
    request = client.build_request("GET", f"http://{HOST}:{port}{path}")
    return await client.send(request, stream=True)


async def read(response: httpx.Response) -> bytes:
    body = b"".join([chunk async for chunk in response.aiter_raw()])
    await response.aclose()
    return body


async def chunked(head: bytes, writer: asyncio.StreamWriter) -> bool:
    writer.write(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
        b'6\r\n{"a":1\r\n2\r\n}\n\r\n0\r\n\r\n'
    )
    return True


async def sized(head: bytes, writer: asyncio.StreamWriter) -> bool:
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello")
    return True


@pytest.mark.parametrize(("reply", "body"), [(chunked, b'{"a":1}\n'), (sized, b"hello")])
async def test_bodies_arrive_whole_over_one_kept_alive_connection(
    reply: Reply, body: bytes
) -> None:
    async with serving(reply) as server, httpx.AsyncClient(transport=transport()) as client:
        for _ in range(5):
            response = await get(client, server.port, "/v1/range/?skip_prev=1")
            assert response.status_code == 200
            assert await read(response) == body
    assert server.connections == 1
    assert server.requests[0].startswith(b"GET /v1/range/?skip_prev=1 HTTP/1.1\r\n")


async def test_a_connection_the_node_closes_is_not_reused() -> None:
    async def close(head: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok")
        return False

    async with serving(close) as server, httpx.AsyncClient(transport=transport()) as client:
        for _ in range(3):
            assert await read(await get(client, server.port)) == b"ok"
    assert server.connections == 3


async def test_a_reused_connection_closed_before_any_reply_is_retried_once() -> None:
    served = 0

    async def once_per_connection(head: bytes, writer: asyncio.StreamWriter) -> bool:
        nonlocal served
        if served and server.connections == 1:
            return False  # the second request on the first connection: closed unanswered
        served += 1
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        return True

    async with (
        serving(once_per_connection) as server,
        httpx.AsyncClient(transport=transport()) as client,
    ):
        assert await read(await get(client, server.port)) == b"ok"
        assert await read(await get(client, server.port)) == b"ok"
    assert server.connections == 2


async def test_a_body_cut_short_raises_and_the_connection_is_dropped() -> None:
    async def cut(head: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial")
        return False

    t = transport()
    async with serving(cut) as server, httpx.AsyncClient(transport=t) as client:
        response = await get(client, server.port)
        with pytest.raises(httpx.RemoteProtocolError, match="complete body"):
            await read(response)
        await asyncio.sleep(0)
        assert t.idle_connections == 0


async def test_a_node_that_never_answers_is_a_read_timeout() -> None:
    async def silent(head: bytes, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(5)
        return False

    timeout = httpx.Timeout(5.0, read=0.2)
    async with (
        serving(silent) as server,
        httpx.AsyncClient(transport=transport(), timeout=timeout) as client,
    ):
        with pytest.raises(httpx.ReadTimeout):
            await get(client, server.port)


async def test_a_full_pool_is_a_pool_timeout_and_a_closed_port_a_connect_error() -> None:
    timeout = httpx.Timeout(5.0, pool=0.2)
    t = transport(max_connections=1)
    async with serving(chunked) as server, httpx.AsyncClient(transport=t, timeout=timeout) as c:
        held = await get(c, server.port)  # not read: its connection stays taken
        with pytest.raises(httpx.PoolTimeout):
            await get(c, server.port)
        assert await read(held) == b'{"a":1}\n'
        assert await read(await get(c, server.port)) == b'{"a":1}\n'  # room again
        port = server.port
    async with httpx.AsyncClient(transport=transport()) as client:
        with pytest.raises(httpx.ConnectError):
            await get(client, port)


async def test_a_slow_reader_stops_the_node_s_writes() -> None:
    big = HIGH_WATER * 256  # beyond what both sockets' kernel buffers hold
    blocked = asyncio.Event()

    async def flood(head: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % big + b"x" * big)
        try:
            await asyncio.wait_for(writer.drain(), 0.5)
        except TimeoutError:
            blocked.set()  # the client stopped reading: the socket buffers are full
        await writer.drain()
        return True

    async with serving(flood) as server, httpx.AsyncClient(transport=transport()) as client:
        response = await get(client, server.port)
        await asyncio.wait_for(blocked.wait(), 5)
        assert len(await read(response)) == big


async def test_other_methods_and_injected_headers_never_reach_the_socket() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201)

    t = KeepAliveTransport(
        fallback=httpx.MockTransport(handler),
        max_connections=1,
        max_keepalive=1,
        keepalive_expiry=1.0,
    )
    async with serving(sized) as server, httpx.AsyncClient(transport=t) as client:
        url = f"http://{HOST}:{server.port}/"
        assert (await client.post(url, content=b"x")).status_code == 201
        assert (await client.get(url.replace("http:", "https:"))).status_code == 201
        bad = client.build_request("GET", url, headers={"x-a": "1\r\nx-b: 2"})
        with pytest.raises(httpx.LocalProtocolError):
            await client.send(bad)
    assert [r.method for r in seen] == ["POST", "GET"]
    assert server.requests == []


async def test_a_follow_left_early_closes_its_connection_and_the_next_opens_anew() -> None:
    """A follow (no read timeout) goes over the node connections too; one its caller leaves
    before the end is closed, never given to the next request."""

    async def endless(head: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
            b"transfer-encoding: chunked\r\n\r\n9\r\ndata: 1\n\n\r\n"
        )
        return True  # and never ends the body

    t = transport()
    async with serving(endless) as server, httpx.AsyncClient(transport=t) as client:
        follow = httpx.Timeout(5.0, read=None)
        for _ in range(2):
            request = client.build_request("GET", f"http://{HOST}:{server.port}/", timeout=follow)
            response = await client.send(request, stream=True)
            assert await anext(response.aiter_raw()) == b"data: 1\n\n"
            assert t.open_connections == 1  # this transport's own, not httpx's
            await response.aclose()
            assert t.idle_connections == 0
    assert server.connections == 2
    assert len(server.requests) == 2


async def test_the_upstream_client_uses_it_for_plain_gets() -> None:
    async with serving(sized) as server, new_upstream_client() as client:
        for _ in range(3):
            assert await read(await get(client, server.port)) == b"hello"
    assert server.connections == 1


async def test_its_responses_leave_no_reference_cycle_for_the_collector() -> None:
    """The upstream client hands a streamed plain GET to the transport straight: httpx's
    client binds each response to a stream that refers back to it, a cycle per small range
    that only the garbage collector frees (issue 17)."""
    async with serving(sized) as server, new_upstream_client() as client:
        gc.disable()
        try:
            response = await get(client, server.port)
            assert await read(response) == b"hello"
            assert response.request.url.port == server.port
            freed = weakref.ref(response)
            del response
            assert freed() is None  # by its reference count alone
        finally:
            gc.enable()


async def test_a_body_already_here_is_taken_whole_and_relayed_as_one_message() -> None:
    written = asyncio.Event()

    async def whole(head: bytes, writer: asyncio.StreamWriter) -> bool:
        await chunked(head, writer)
        await writer.drain()
        written.set()
        return True

    call = UpstreamCall(
        method="GET",
        path="/v1/range/",
        query=b"",
        headers=((b"accept", b"application/json"),),
        node="S0",
        uid="alice",
        client=None,
        scheme="http",
        token=None,
    )
    metrics = ProxyMetrics()
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        await asyncio.Event().wait()  # never: a whole body needs no disconnect watch
        return {}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    async with serving(whole) as server, new_upstream_client() as client:
        opened = await HttpUpstream(client).open(f"http://{HOST}:{server.port}", call)
        await written.wait()
        await asyncio.sleep(0.1)  # the bytes in the socket reach the connection meanwhile
        response = RelayResponse(opened, node="S0", headers=[], metrics=metrics)
        await response({"type": "http"}, receive, send)  # type: ignore[arg-type]
        # Given back whole: the next request reuses the connection.
        again = await HttpUpstream(client).open(f"http://{HOST}:{server.port}", call)
        assert b"".join([c async for c in again.chunks()]) == b'{"a":1}\n'
        await again.aclose()
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[1] == {"type": "http.response.body", "body": b'{"a":1}\n', "more_body": False}
    assert (metrics.bytes_relayed, metrics.entries_relayed) == (8, 1)
    assert server.connections == 1


HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
BODY = b'8\r\n{"a":1}\n\r\n0\r\n\r\n'


async def test_a_body_sent_just_after_its_head_still_comes_whole() -> None:
    """As a node reader (uvicorn) answers: the head, then the body in another write."""

    async def apart(head: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(HEAD)
        await writer.drain()
        for _ in range(3):  # turns of the loop: the client reads the head alone
            await asyncio.sleep(0)
        writer.write(BODY)
        return True

    async with serving(apart) as server, new_upstream_client() as client:
        response = await get(client, server.port)
        assert response.extensions[WHOLE_BODY]() == b'{"a":1}\n'
        await response.aclose()


async def test_a_body_slower_than_the_wait_is_streamed_as_it_comes() -> None:
    release = asyncio.Event()

    async def slow(head: bytes, writer: asyncio.StreamWriter) -> bool:
        writer.write(HEAD)
        await release.wait()  # until the caller has the response: no bounded wait blocks it
        writer.write(BODY)
        return True

    async with serving(slow) as server, new_upstream_client() as client:
        response = await asyncio.wait_for(get(client, server.port), 5.0)
        assert response.extensions[WHOLE_BODY]() is None
        release.set()
        assert await read(response) == b'{"a":1}\n'
