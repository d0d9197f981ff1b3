"""`KeepAliveTransport`: plain-HTTP GETs to the node readers over pooled keep-alive connections,
under the httpx API (ARCHITECTURE §4: a faster transport rather than dropping httpx).

Measured in the gateway bench (issue 17): httpx's default transport (httpcore over anyio and
h11) spent more of the gateway's CPU per small range than the whole rest of the request, most
of it in pool bookkeeping (`is_idle`, `has_expired`, `is_socket_readable`, anyio's
`extra_attributes`). Here a connection is an `asyncio.Protocol` whose responses `httptools`
parses as they arrive (the parser uvicorn uses), and the pool is a stack of idle connections
per origin: taking one is a pop, giving it back a push.

Only what the node readers' ranges and follows need goes this way: `GET` without a body,
over `http` (a follow has no read timeout: it waits for the next event as long as it takes).
Follows go this way too since issue 17's fan-out bench: with thousands of them open, httpx's
pool spent most of the gateway's CPU opening, reading and closing them (its bookkeeping walks
every connection of the pool on each). Anything else (TLS, a request body, another method)
goes to `fallback`, httpx's own transport, so its behaviour is exactly httpx's. Failures are
httpx's exceptions (`ConnectError`, `ReadTimeout`, `PoolTimeout`, `RemoteProtocolError`, …), so
callers map them as before.

Backpressure: a connection stops reading from its socket while more than `HIGH_WATER` bytes
of body wait for the caller, and reads again once they are taken; nothing buffers without
bound, whatever the node sends.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import cast

import httptools
import httpx

HIGH_WATER = 256 * 1024  # body bytes read from a node and not yet taken: stop reading
LOW_WATER = 64 * 1024  # read again below this
# How long a response's head waits for the rest of a small body (see `handle_async_request`),
# and how much body is enough to start relaying at once.
WHOLE_WAIT = 0.002
WHOLE_MAX = 64 * 1024
# RFC 9110 §5.6.2 token; a value must hold no CR, LF or NUL (header injection).
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(rb"[\r\n\x00]")
_BODY_FRAMING = frozenset({b"content-length", b"transfer-encoding"})

Key = tuple[str, int]
# A response extension: `() -> bytes | None`, the whole body if it has all arrived already (a
# small range usually has by the time its headers are handled), so the relay can send it as one
# message, without the machinery a body still to come needs.
WHOLE_BODY = "logway.whole_body"


class _Connection(asyncio.Protocol):
    """One keep-alive connection to a node, with at most one request in flight."""

    def __init__(self, pool: KeepAliveTransport, key: Key) -> None:
        self._pool = pool
        self.key = key
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self.closed = False
        self.idle = False
        self.expires = 0.0
        self._start_request()

    def _start_request(self) -> None:
        self.status = 0
        self.reason = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.chunks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False
        self.head_done = False
        self.complete = False
        self.keep_alive = False
        self.received = False  # any byte of this request's response
        self.error: httpx.TransportError | None = None
        self._waiter: asyncio.Future[None] | None = None

    # asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.idle or self.complete:  # nothing was asked: the stream is out of step
            self._fail(httpx.RemoteProtocolError("unexpected data from the node"))
            self.close()
            return
        self.received = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"invalid response from the node: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if not self.closed:
            self.closed = True
            self._pool._lost(self)
        if not self.complete:
            message = "the node closed the connection"
            if self.head_done:
                message += " without sending the complete body"
            self._fail(httpx.RemoteProtocolError(message))

    # httptools callbacks -------------------------------------------------------------------

    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        self.head_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER and not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        # Asked here: once the callback returns, the parser has reset for the next message.
        self.keep_alive = bool(self._parser.should_keep_alive())
        self.complete = True
        self._wake()

    # used by the pool and the body stream --------------------------------------------------

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fail(self, error: httpx.TransportError) -> None:
        if self.error is None:
            self.error = error
        self._wake()

    def send(self, request: bytes) -> None:
        self._start_request()
        self.idle = False
        if self._transport is None or self._transport.is_closing():
            self._fail(httpx.RemoteProtocolError("the connection to the node is closed"))
            return
        self._transport.write(request)

    async def wait(self, seconds: float | None, request: httpx.Request) -> None:
        """Until something happens (headers, body, the end, a failure) or `seconds` pass."""
        waiter = self._waiter = self._loop.create_future()
        timer = None
        if seconds is not None:
            timer = self._loop.call_later(seconds, _expire, waiter)
        try:
            await waiter
        except TimeoutError:
            raise httpx.ReadTimeout("the node did not answer in time", request=request) from None
        finally:
            if timer is not None:
                timer.cancel()
            if self._waiter is waiter:
                self._waiter = None

    async def settle(self, seconds: float, size: int) -> None:
        """Until the response is complete or failed, `size` body bytes wait, or `seconds`
        pass, whichever comes first."""
        deadline = self._loop.time() + seconds
        while not (self.complete or self.error is not None or self._buffered >= size):
            left = deadline - self._loop.time()
            if left <= 0:
                return
            waiter = self._waiter = self._loop.create_future()
            timer = self._loop.call_later(left, _wake, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                if self._waiter is waiter:
                    self._waiter = None

    def take(self) -> bytes:
        """Every body byte received and not yet taken, as one chunk."""
        chunk = self.chunks.popleft() if len(self.chunks) == 1 else b"".join(self.chunks)
        self.chunks.clear()
        self._buffered = 0
        if self._paused and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()
        return chunk

    @property
    def reusable(self) -> bool:
        return (
            self.complete
            and self.error is None
            and not self.closed
            and self._transport is not None
            and not self._transport.is_closing()
            and self.keep_alive
        )

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()  # connection_lost follows, which tells the pool


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class _Body(httpx.AsyncByteStream):
    """A response body as it arrives; closing it gives the connection back (whole) or closes it
    (cut short)."""

    def __init__(
        self, conn: _Connection, release: Callable[[_Connection], None], request: httpx.Request
    ) -> None:
        self._conn: _Connection | None = conn
        self._release = release
        self._request = request
        self._read_timeout = request.extensions.get("timeout", {}).get("read")
        self._started = self._taken_whole = False

    def whole(self) -> bytes | None:
        """The whole body when all of it has arrived and none was taken yet, else None; after
        it, the stream yields nothing more."""
        conn = self._conn
        if conn is None or not conn.complete or conn.error is not None or self._started:
            return None
        self._started = True
        self._taken_whole = True
        return conn.take() if conn.chunks else b""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self._started = True
        if self._taken_whole:
            return
        conn = self._conn
        while conn is not None:
            if conn.chunks:
                yield conn.take()
            elif conn.complete:
                return
            elif conn.error is not None:
                error = conn.error
                raise type(error)(str(error), request=self._request)
            else:
                await conn.wait(self._read_timeout, self._request)
            conn = self._conn

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._release(conn)


class KeepAliveTransport(httpx.AsyncBaseTransport):
    """`max_connections` open at most (idle ones included; one more waits up to the request's
    pool timeout, then `PoolTimeout`), at most `max_keepalive` of them idle, each idle for at
    most `keepalive_expiry` seconds. A `GET` that fails on a reused connection before any byte
    of its response came back is sent once more on a new one (the node may have closed the
    idle connection just then, as nginx's `proxy_next_upstream error` assumes)."""

    def __init__(
        self,
        *,
        fallback: httpx.AsyncBaseTransport,
        max_connections: int,
        max_keepalive: int,
        keepalive_expiry: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fallback = fallback
        self._max = max_connections
        self._max_idle = max_keepalive
        self._expiry = keepalive_expiry
        self._clock = clock
        self._idle: dict[Key, list[_Connection]] = {}
        self._idle_count = 0
        self._open = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._connections: set[_Connection] = set()
        self._closed = False

    @property
    def open_connections(self) -> int:
        return self._open

    @property
    def idle_connections(self) -> int:
        return self._idle_count

    @staticmethod
    def takes(request: httpx.Request) -> bool:
        """Whether this transport's own pool serves `request` (a plain-HTTP GET), rather than
        `fallback`."""
        return request.method == "GET" and request.url.scheme == "http"

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        timeouts = request.extensions.get("timeout", {})
        head = _serialise(request) if self.takes(request) else None
        if head is None:
            return await self._fallback.handle_async_request(request)
        key = (url.host, url.port or 80)
        for _attempt in range(2):
            conn, reused = await self._acquire(key, timeouts, request)
            conn.send(head)
            try:
                while not conn.head_done:
                    if conn.error is not None:
                        raise type(conn.error)(str(conn.error), request=request)
                    await conn.wait(timeouts.get("read"), request)
                # A node reader (uvicorn) sends a range's head before it reads the journal, so
                # the head often comes alone; a small range's body follows within a millisecond
                # or two. Waiting that long for it lets the response go out whole
                # (`WHOLE_BODY`), one message, rather than through the streaming relay and its
                # disconnect watch, which about half of the small ranges took (issue 17). A
                # follow (no read timeout) streams as it comes.
                if timeouts.get("read") is not None:
                    await conn.settle(WHOLE_WAIT, WHOLE_MAX)
            except httpx.RemoteProtocolError:
                conn.close()
                if reused and not conn.received:
                    continue  # the node closed the idle connection just now: once more
                raise
            except BaseException:
                conn.close()
                raise
            body = _Body(conn, self._release, request)
            return httpx.Response(
                conn.status,
                headers=conn.headers,
                stream=body,
                request=request,
                extensions={
                    "http_version": b"HTTP/1.1",
                    "reason_phrase": conn.reason,
                    WHOLE_BODY: body.whole,
                },
            )
        raise AssertionError("unreachable")  # pragma: no cover

    async def _acquire(
        self, key: Key, timeouts: dict[str, float | None], request: httpx.Request
    ) -> tuple[_Connection, bool]:
        if self._closed:
            raise httpx.ConnectError("the transport is closed", request=request)
        stack = self._idle.get(key)
        now = self._clock()
        while stack:
            conn = stack.pop()
            self._idle_count -= 1
            conn.idle = False
            if conn.closed or now >= conn.expires:
                conn.close()
                continue
            return conn, True
        deadline = None
        while self._open >= self._max:
            if self._idle_count:  # room is held by idle connections to other nodes
                self._close_one_idle()
                continue
            pool_timeout = timeouts.get("pool")
            if deadline is None and pool_timeout is not None:
                deadline = now + pool_timeout
            await self._wait_for_room(deadline, request)
        self._open += 1
        try:
            return await self._connect(key, timeouts.get("connect"), request), False
        except BaseException:
            self._open -= 1
            self._room()
            raise

    async def _wait_for_room(self, deadline: float | None, request: httpx.Request) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            left = None if deadline is None else max(0.0, deadline - self._clock())
            await asyncio.wait_for(waiter, left)
        except TimeoutError:
            raise httpx.PoolTimeout("no connection free in time", request=request) from None
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)

    async def _connect(
        self, key: Key, seconds: float | None, request: httpx.Request
    ) -> _Connection:
        loop = asyncio.get_running_loop()
        host, port = key
        try:
            opening = loop.create_connection(lambda: _Connection(self, key), host, port)
            _, conn = await asyncio.wait_for(opening, seconds)
        except TimeoutError:
            raise httpx.ConnectTimeout("timed out connecting", request=request) from None
        except OSError as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc
        self._connections.add(conn)
        return conn

    def _release(self, conn: _Connection) -> None:
        """Back on its idle stack when the response was read whole, else closed."""
        if not conn.reusable or self._closed or self._idle_count >= self._max_idle:
            conn.close()
            return
        conn.idle = True
        conn.expires = self._clock() + self._expiry
        self._idle.setdefault(conn.key, []).append(conn)
        self._idle_count += 1
        self._room()

    def _lost(self, conn: _Connection) -> None:
        """`conn` closed (by us or the node): it no longer counts."""
        self._connections.discard(conn)
        self._open -= 1
        if conn.idle:
            conn.idle = False
            stack = self._idle.get(conn.key)
            if stack is not None and conn in stack:
                stack.remove(conn)
                self._idle_count -= 1
        self._room()

    def _close_one_idle(self) -> None:
        oldest: _Connection | None = None
        for stack in self._idle.values():
            if stack and (oldest is None or stack[0].expires < oldest.expires):
                oldest = stack[0]
        if oldest is not None:
            self._idle[oldest.key].remove(oldest)
            self._idle_count -= 1
            oldest.idle = False
            self._open -= 1  # counted now: its connection_lost comes later
            oldest.closed = True
            self._connections.discard(oldest)
            oldest.close()

    def _room(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def aclose(self) -> None:
        self._closed = True
        for conn in list(self._connections):
            conn.close()
        self._idle.clear()
        self._idle_count = 0
        await self._fallback.aclose()


def _serialise(request: httpx.Request) -> bytes | None:
    """The head of a GET without a body; None for one with a body (framing headers), which
    the fallback sends. Refuses any header that could split the head."""
    lines = [b"GET ", request.url.raw_path, b" HTTP/1.1\r\n"]
    for name, value in request.headers.raw:
        if not _TOKEN.fullmatch(name) or _BAD_VALUE.search(value):
            raise httpx.LocalProtocolError(f"invalid request header {name!r}", request=request)
        if name.lower() in _BODY_FRAMING:
            return None
        lines += (name, b": ", value, b"\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


__all__ = ["HIGH_WATER", "WHOLE_BODY", "KeepAliveTransport"]
