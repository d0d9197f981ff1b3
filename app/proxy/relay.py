"""The node's body relayed to the client as it arrives (security §3 P11-P13).

Backpressure: one chunk is read from the node, then `await send()` (uvicorn waits while the
client's socket is full), then the next; nothing else buffers, so a slow client slows the node
and the gateway's memory stays flat. A task watches `http.disconnect` meanwhile, because uvicorn
drops sends after a disconnect silently and an idle follow sends nothing to notice it with:
the relay is cancelled at once and the node's response closed in a `finally`.

An open follow ends when its caller's access does (`app.authz.access`): an event stream with
a last `access-ended` event naming why, any other body with its final chunk, as a whole
response; the node's stream is closed as on a disconnect.

After the response has started the status cannot change. An event stream that follows the
journal is resumed when the node goes away (see `sse.py`); any other body cut short ends
without its final chunk, so the client sees a truncated response, not a complete one.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app.authz.access import StreamAccess, final_event
from app.proxy.call import SSE, UpstreamResponse
from app.proxy.errors import UpstreamError
from app.proxy.headers import Headers
from app.proxy.metrics import EntryCounter, ProxyMetrics
from app.proxy.sse import SseFramer

log = logging.getLogger(__name__)

# An SSE comment: keeps the client's connection (and any proxy in between) busy while the
# node is away, and is ignored by every SSE parser.
RECONNECTING = b": upstream reconnecting\n\n"

# How long one chunk may wait for a client that has stopped reading (nginx `send_timeout`).
SEND_TIMEOUT = 60.0


class _ClientStalled(Exception):
    """The client took no bytes for `send_timeout` seconds."""


@dataclass(frozen=True, slots=True)
class ResumePolicy:
    """Reconnects after a follow stream's node went away: exponential backoff from
    `first_delay` to `max_delay`, at most `attempts` times and `give_up_after` seconds of
    waiting in all; then the stream ends (and an SSE client reconnects by itself)."""

    attempts: int = 8
    first_delay: float = 0.2
    max_delay: float = 5.0
    give_up_after: float = 60.0

    def delays(self) -> Iterator[float]:
        delay, waited = self.first_delay, 0.0
        for _ in range(self.attempts):
            if waited + delay > self.give_up_after:
                return
            yield delay
            waited += delay
            delay = min(delay * 2, self.max_delay)


NO_RESUME = ResumePolicy(attempts=0)

# Opens the same call again, after the given event id (None: as first sent).
Reopen = Callable[[str | None], Awaitable[UpstreamResponse]]


class Outcome(enum.Enum):
    COMPLETE = "complete"  # the body ended: send the final chunk
    DISCONNECTED = "disconnected"  # the client left: nothing more to send
    BROKEN = "broken"  # cut short: end without the final chunk
    SENT = "sent"  # the whole body went out with its end: nothing more to send


async def until_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


async def until_ended(access: StreamAccess, scope: anyio.CancelScope) -> None:
    await access.ended()
    scope.cancel()


class RelayResponse(Response):
    def __init__(
        self,
        opened: UpstreamResponse,
        *,
        node: str,
        headers: Headers,
        metrics: ProxyMetrics,
        reopen: Reopen | None = None,
        policy: ResumePolicy = NO_RESUME,
        body: bool = True,
        send_timeout: float = SEND_TIMEOUT,
    ) -> None:
        """`reopen` makes the body an event stream that is resumed by `policy`; `body=False`
        (HEAD, 204, 304) sends none and never reads the node's. A client that takes no bytes
        for `send_timeout` seconds is cut off, so it cannot hold the node's stream forever."""
        super().__init__(status_code=opened.status_code)
        self.raw_headers = headers
        self._current = opened
        self._node = node
        self._metrics = metrics
        self._reopen = reopen
        self._policy = policy
        self._body = body
        self._send_timeout = send_timeout
        ok = opened.status_code == 200
        self._entries = EntryCounter.for_media_type(opened.media_type) if ok else None
        # Called once when the relay ends however it ends (the gateway's per-identity count).
        self.on_close: Callable[[], None] | None = None
        # Leases the caller's access for as long as the relay runs (a follow's): the relay
        # ends when the lease does. Called when the response starts, closed when it ends.
        self.watch: Callable[[], StreamAccess] | None = None
        self._access: StreamAccess | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._metrics.active_streams += 1
        self._metrics.streams_total += 1
        if self.watch is not None:
            self._access = self.watch()
        try:
            # A range whose body has all arrived already (a small one, usually) goes out as one
            # message: nothing to wait for, so no disconnect watch (issue 17).
            whole = None
            if self._body and self._reopen is None and self._access is None:
                whole = self._current.whole_body()
            start = {"type": "http.response.start", "status": self.status_code}
            await send({**start, "headers": self.raw_headers})
            if whole is not None:
                outcome = await self._send_whole(send, whole)
            else:
                outcome = await self._relay(receive, send) if self._body else Outcome.COMPLETE
            if outcome is Outcome.COMPLETE:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            # BROKEN: returning without the final chunk makes the server close the connection.
        finally:
            with anyio.CancelScope(shield=True):
                await self._current.aclose()
            if self._access is not None:
                self._access.close()
            self._metrics.active_streams -= 1
            if self.on_close is not None:
                self.on_close()

    async def _relay(self, receive: Receive, send: Send) -> Outcome:
        outcome = Outcome.DISCONNECTED
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(until_disconnect, receive, tasks.cancel_scope)
            if self._access is not None:
                tasks.start_soon(until_ended, self._access, tasks.cancel_scope)
            try:
                if self._reopen is None:
                    outcome = await self._relay_raw(send)
                else:
                    outcome = await self._relay_events(send, self._reopen)
            except _ClientStalled:
                self._metrics.stalled_clients += 1
                log.warning(
                    "node %s: client read nothing for %.0f s, stream closed",
                    self._node,
                    self._send_timeout,
                )
                outcome = Outcome.BROKEN
            tasks.cancel_scope.cancel()
        # Cancelled (the outcome left as it was) because the caller's access ended.
        ended = self._access.reason if self._access is not None else None
        if outcome is Outcome.DISCONNECTED and ended is not None:
            return await self._access_ended(send, ended)
        return outcome

    async def _access_ended(self, send: Send, reason: str) -> Outcome:
        log.info("node %s: stream ended: %s", self._node, reason)
        if self._reopen is not None:  # an event stream, cut between whole events
            try:
                await self._send(send, final_event(reason))
            except _ClientStalled:
                return Outcome.BROKEN
        return Outcome.COMPLETE

    async def _send(self, send: Send, chunk: bytes) -> None:
        self._metrics.bytes_relayed += len(chunk)
        if self._entries is not None:
            self._metrics.entries_relayed += self._entries.feed(chunk)
        with anyio.move_on_after(self._send_timeout) as waited:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        if waited.cancelled_caught:
            raise _ClientStalled

    async def _send_whole(self, send: Send, body: bytes) -> Outcome:
        """`body` and the end of the response in one message."""
        self._metrics.bytes_relayed += len(body)
        if self._entries is not None:
            self._metrics.entries_relayed += self._entries.feed(body)
        with anyio.move_on_after(self._send_timeout) as waited:
            await send({"type": "http.response.body", "body": body, "more_body": False})
        if waited.cancelled_caught:
            self._metrics.stalled_clients += 1
            log.warning(
                "node %s: client read nothing for %.0f s, stream closed",
                self._node,
                self._send_timeout,
            )
            return Outcome.BROKEN
        return Outcome.SENT

    def _failed(self, exc: UpstreamError, what: str) -> None:
        self._metrics.upstream_error(exc.kind)
        log.warning("node %s: %s: %s", self._node, what, exc.message)

    async def _relay_raw(self, send: Send) -> Outcome:
        try:
            async for chunk in self._current.chunks():
                await self._send(send, chunk)
        except UpstreamError as exc:
            self._failed(exc, "response cut short")
            return Outcome.BROKEN
        return Outcome.COMPLETE

    async def _relay_events(self, send: Send, reopen: Reopen) -> Outcome:
        framer = SseFramer()
        delays = self._policy.delays()
        while True:
            progressed = False
            try:
                async for chunk in self._current.chunks():
                    events = framer.feed(chunk)
                    if events:
                        progressed = True
                        await self._send(send, events)
                log.info("node %s: event stream ended", self._node)
            except UpstreamError as exc:
                self._failed(exc, "event stream broken")
            if not framer.resumable:
                return Outcome.BROKEN  # part of an oversized event is already out
            framer.discard_partial()  # sent again, whole, after the resume
            if progressed:  # a fresh budget only for a stream that delivered something
                delays = self._policy.delays()
            if not await self._resume(send, reopen, framer.last_id, delays):
                return Outcome.COMPLETE

    async def _resume(
        self, send: Send, reopen: Reopen, last_id: str | None, delays: Iterator[float]
    ) -> bool:
        await self._current.aclose()
        for delay in delays:
            await self._send(send, RECONNECTING)
            await anyio.sleep(delay)
            try:
                response = await reopen(last_id)
            except UpstreamError as exc:
                self._failed(exc, "cannot resume yet")
                continue
            if response.status_code == 200 and response.media_type == SSE:
                self._current = response
                self._metrics.resumes += 1
                log.info("node %s: event stream resumed after %s", self._node, last_id)
                return True
            with anyio.CancelScope(shield=True):
                await response.aclose()
            self._metrics.upstream_error(f"status_{response.status_code}")
            if response.status_code < 500:
                break  # the node refuses this resume (bad cursor, credential): retrying won't help
        log.warning("node %s: gave up resuming the event stream", self._node)
        return False


__all__ = [
    "NO_RESUME",
    "RECONNECTING",
    "SEND_TIMEOUT",
    "Outcome",
    "RelayResponse",
    "Reopen",
    "ResumePolicy",
    "until_disconnect",
    "until_ended",
]
