"""One caller of a shared upstream follow (`app.proxy.share`): its response, its queue.

The share's pump hands every follower the same bytes object (`offer`). A follower with
nothing queued and no send under way sends it at once through the server's own `send`, on
the pump's stack (`app.proxy.direct`: no task woken per follower, no middleware in between);
a send that has to wait (the client's buffer is full) is finished by the follower's task.
Otherwise the chunk is queued and the task woken; it sends what is queued, joined into one
chunk, with one `await send()`. Nothing is parsed or encoded per follower.

A slow follower never holds the others: its queue is bounded (`queue_bytes`). A follower
alone in its share holds no one, so it paces the share instead: the pump waits until it has
sent what it holds (`drained`), and the node's flow control does the rest, as for a follow
that was never shared (a client on a slow link reading a busy journal is not cut off). One
that overflows while others share its upstream, or whose current send has waited
`send_timeout` seconds, is cut off: it gets the
comment `OVERFLOW` if its socket still takes it, then the connection closes without the
final chunk (a truncated response, as any relay cut short). It held only whole events, so
it reconnects with `Last-Event-ID` and misses nothing; the share's recent events serve it.

The caller's access is watched per caller, as for a relay of its own: when it ends, this
caller alone gets the `access-ended` event and leaves the share.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app.authz.access import StreamAccess, final_event
from app.proxy.direct import Pending, send_now, server_send
from app.proxy.headers import Headers
from app.proxy.metrics import ProxyMetrics
from app.proxy.relay import Outcome, until_disconnect, until_ended

if TYPE_CHECKING:
    from app.proxy.share import Share

log = logging.getLogger(__name__)

# A follower may fall this far behind the share before it is cut off.
QUEUE_BYTES = 1024 * 1024
OVERFLOW = b": too far behind, disconnected: reconnect with Last-Event-ID\n\n"
# How long the last words to a cut-off or ending follower may take.
LAST_WORDS_TIMEOUT = 1.0


class SharedFollow(Response):
    def __init__(
        self,
        share: Share,
        replay: bytes,
        *,
        headers: Headers,
        metrics: ProxyMetrics,
        queue_bytes: int = QUEUE_BYTES,
        send_timeout: float,
    ) -> None:
        super().__init__(status_code=200)
        self.raw_headers = headers
        self._share = share
        self._metrics = metrics
        self._limit = queue_bytes
        self._send_timeout = send_timeout
        self._chunks: deque[bytes] = deque([replay] if replay else [])
        self._size = len(replay)
        self._waiter: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None  # the pump, waiting for `drained`
        self._sending_since: float | None = None
        self._end: Outcome | None = None  # set by the share when its upstream ended
        self._cut = False
        self._scope: anyio.CancelScope | None = None
        # The direct path (`app.proxy.direct`): the server's send, once the response started;
        # a send of it that had to wait, for this follower's task to finish.
        self._direct: Send | None = None
        self._pending: Pending | None = None
        # The same hooks as `RelayResponse`: the per-identity count, the access lease.
        self.on_close: Callable[[], None] | None = None
        self.watch: Callable[[], StreamAccess] | None = None
        self._access: StreamAccess | None = None

    # Called by the share, on the event loop, never awaiting -----------------------------

    def offer(self, chunk: bytes, now: float) -> None:
        if self._cut:
            return
        direct, scope, access = self._direct, self._scope, self._access
        if (
            direct is not None
            and self._sending_since is None
            and not self._chunks
            and scope is not None
            and not scope.cancel_called  # cut off, gone, or its access ended: nothing more
            and (access is None or access.reason is None)
        ):
            self._send_now(direct, chunk, now)
            return
        self._chunks.append(chunk)
        self._size += len(chunk)
        since = self._sending_since
        stalled = since is not None and now - since > self._send_timeout
        if stalled or (self._size > self._limit and len(self._share.followers) > 1):
            self.cut()
            return
        self._wake()

    def _send_now(self, send: Send, chunk: bytes, now: float) -> None:
        """Idle: the event goes to the server's send on the pump's stack, no task woken."""
        self._metrics.bytes_relayed += len(chunk)
        try:
            message = {"type": "http.response.body", "body": chunk, "more_body": True}
            pending = send_now(send, message)
        except Exception:  # the server refused it: this follower is done, the others are not
            log.exception("node %s: a direct send failed", self._share.node)
            self.cut()
            return
        if pending is not None:  # the client's buffer is full: its task finishes the send
            self._pending = pending
            self._sending_since = now
            self._wake()

    async def drained(self) -> None:
        """Until this follower holds at most `queue_bytes`, is cut off, has left, or is no
        longer alone in the share; one whose send stalls `send_timeout` meanwhile is cut."""
        while self._size > self._limit and not self._cut and len(self._share.followers) == 1:
            self._drain = asyncio.get_running_loop().create_future()
            try:
                async with asyncio.timeout(self._send_timeout):
                    await self._drain
            except TimeoutError:
                self.cut()

    def release(self) -> None:
        """Another follower joined: the pump no longer waits for this one."""
        self._drained()

    def _drained(self) -> None:
        drain = self._drain
        if drain is not None and not drain.done():
            drain.set_result(None)

    def finish(self, outcome: Outcome) -> None:
        self._end = outcome
        self._wake()

    def cut(self) -> None:
        self._cut = True
        self._wake()
        self._drained()
        if self._scope is not None:
            self._scope.cancel()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # The caller's response ---------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._metrics.active_streams += 1
        self._metrics.streams_total += 1
        self._metrics.shared_followers += 1
        if self.watch is not None:
            self._access = self.watch()
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            # Through the middleware: the body has started (a stream to end at shutdown). Then
            # the body's chunks may take the direct path.
            await send({"type": "http.response.body", "body": b"", "more_body": True})
            self._direct = server_send(scope)
            outcome = await self._run(receive, send)
            if outcome is Outcome.COMPLETE:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            self._cut = True  # nothing more to wait for
            self._drained()
            self._share.detach(self)
            if self._access is not None:
                self._access.close()
            self._metrics.active_streams -= 1
            self._metrics.shared_followers -= 1
            if self.on_close is not None:
                self.on_close()

    async def _run(self, receive: Receive, send: Send) -> Outcome:
        async with anyio.create_task_group() as tasks:
            self._scope = tasks.cancel_scope
            tasks.start_soon(until_disconnect, receive, tasks.cancel_scope)
            if self._access is not None:
                tasks.start_soon(until_ended, self._access, tasks.cancel_scope)
            outcome = await self._relay(send)
            tasks.cancel_scope.cancel()
            return outcome
        # Cancelled: the client left, its access ended, or it was cut off.
        ended = self._access.reason if self._access is not None else None
        if self._cut:
            self._metrics.stalled_clients += 1
            log.warning("node %s: follower too far behind, disconnected", self._share.node)
            await self._last_words(send, OVERFLOW)
            return Outcome.BROKEN
        if ended is not None:
            log.info("node %s: stream ended: %s", self._share.node, ended)
            if await self._last_words(send, final_event(ended)):
                return Outcome.COMPLETE
            return Outcome.BROKEN
        return Outcome.DISCONNECTED

    async def _last_words(self, send: Send, chunk: bytes) -> bool:
        with anyio.move_on_after(LAST_WORDS_TIMEOUT) as waited:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        return not waited.cancelled_caught

    async def _relay(self, send: Send) -> Outcome:
        loop = asyncio.get_running_loop()
        chunks = self._chunks
        send = self._direct or send
        while True:
            pending = self._pending
            if pending is not None:  # a direct send that had to wait
                await pending.finish()
                self._pending = None
                self._sending_since = None
                continue
            if not chunks:
                if self._end is not None:
                    return self._end
                self._waiter = loop.create_future()
                await self._waiter
                self._waiter = None
                continue
            body = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
            chunks.clear()
            self._size = 0
            self._drained()
            self._metrics.bytes_relayed += len(body)
            self._sending_since = loop.time()
            await send({"type": "http.response.body", "body": body, "more_body": True})
            self._sending_since = None


__all__ = ["LAST_WORDS_TIMEOUT", "OVERFLOW", "QUEUE_BYTES", "SharedFollow"]
