"""Shared upstream follows (issue 17): callers whose authorized follows would send the node
the same request share one upstream stream, as the node reader shares one journal tail.

The key is the resolved upstream request, taken only after the route authorized the caller:
the node's base URL (from the Mesos snapshot), the node-side path and the query byte for
byte, and `Accept`. The gateway's own credential goes to the node, never the caller's, so
callers with equal keys would get equal bytes; anything that differs gets its own share.
The share's request carries no caller's address or uid (the gateway audits each caller).

A share keeps its recent events (`RING_EVENTS`, `RING_BYTES`), so a late caller starts
exactly where it would alone (`app.proxy.start`): after its `Last-Event-ID`, at the last N,
or at a fixed start whose whole history is still held. A caller that cannot join gets its
own upstream (a new share, or a relay of its own for a `Last-Event-ID` no share holds).

One pump task per share reads the node, frames whole events (`SseFramer`), remembers them
and hands the same bytes to every follower (`SharedFollow.offer`). The node going away is
resumed with the last event id, for every follower at once, as `RelayResponse` does for one.
When the last follower leaves, the pump stops and the upstream closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import anyio

from app.proxy.call import SSE, Upstream, UpstreamCall, UpstreamResponse
from app.proxy.errors import UpstreamError
from app.proxy.follower import QUEUE_BYTES, SharedFollow
from app.proxy.headers import Headers
from app.proxy.metrics import EntryCounter, ProxyMetrics
from app.proxy.relay import RECONNECTING, SEND_TIMEOUT, Outcome, ResumePolicy
from app.proxy.sse import SseFramer, last_event_id
from app.proxy.start import Start, follow_start

log = logging.getLogger(__name__)

# Each share keeps its recent events for late callers: bounded, as a gateway may hold
# thousands of shares (one per followed task).
RING_EVENTS = 256
RING_BYTES = 64 * 1024
# A caller waits this long for a share being opened before it opens its own; and this long
# for a last-N share's catch-up.
JOIN_WAIT = 5.0
CATCH_UP_WAIT = 1.0
_BOUNDARY = re.compile(rb"(?:\r\n|\r(?!\n)|\n){2}")

Key = tuple[str, str, bytes, str]


@dataclass(frozen=True, slots=True)
class Plan:
    """A follow that may share: its key, its start, the request a share sends."""

    key: Key
    start: Start
    base_url: str
    call: UpstreamCall


def _blocks(ring: deque[tuple[str | None, bytes]], first: int) -> bytes:
    return b"".join(block for _, block in itertools.islice(ring, first, None))


def _skipped(headers: Headers, prev: int) -> Headers:
    """`headers` with the skips the node reports for a start `prev` entries back."""
    values = {b"x-journal-skip-next": b"0", b"x-journal-skip-prev": str(prev).encode()}
    return [(name, values.get(name, value)) for name, value in headers]


def _blocks_of(chunk: bytes) -> list[bytes]:
    """Whole events cut at their boundaries. The node ends every event with LF LF (other
    servers with CRLF CRLF): when that is the only kind of line end in `chunk`, a split finds
    them without the pattern."""
    if b"\r" not in chunk:
        return [part + b"\n\n" for part in chunk.split(b"\n\n")[:-1]]
    if (
        b"\n\n" not in chunk
        and b"\r\r" not in chunk
        and chunk.count(b"\n\r") == chunk.count(b"\r\n\r\n")
    ):
        parts = chunk.split(b"\r\n\r\n")
        return [part + b"\r\n\r\n" for part in parts[:-1]]
    blocks, start = [], 0
    for boundary in _BOUNDARY.finditer(chunk):
        blocks.append(chunk[start : boundary.end()])
        start = boundary.end()
    return blocks


def _is_event(block: bytes) -> bool:
    if block.startswith((b"data:", b"id:")):  # the node's events begin with their id
        return True
    return any(
        line.startswith((b"data:", b"id:")) or line in (b"data", b"id")
        for line in block.replace(b"\r", b"\n").split(b"\n")
    )


def _events(chunk: bytes) -> Iterator[tuple[str | None, bytes]]:
    """The events (blocks with a `data` or `id` field) of whole events, with their ids."""
    for block in _blocks_of(chunk):
        if _is_event(block):
            yield last_event_id(block), block


class Share:
    def __init__(self, owner: SharedFollows, plan: Plan) -> None:
        self.key = plan.key
        self.node = plan.call.node
        self._owner = owner
        self._plan = plan
        self._ready = asyncio.Event()  # opened (headers set) or failed
        self._warm = asyncio.Event()  # a last-N start has its N events (or never will)
        self.headers: Headers | None = None
        self._skip_prev: int | None = None
        self._ring: deque[tuple[str | None, bytes]] = deque()
        self._ring_bytes = 0
        self._whole = True  # the ring holds every event since the start
        self._events = 0
        self._joinable = True
        self.followers: set[SharedFollow] = set()
        self.ended = False
        self._task: asyncio.Task[None] | None = None
        self._entries: EntryCounter | None = None

    # Opening --------------------------------------------------------------------------

    def begin(self, opened: UpstreamResponse, headers: Headers) -> None:
        self.headers = headers
        self._entries = EntryCounter.for_media_type(SSE)
        for name, value in headers:
            if name == b"x-journal-skip-prev" and value.isdigit():
                self._skip_prev = int(value)
        self._ready.set()
        self._check_warm()
        self._task = asyncio.create_task(self._pump(opened), name=f"shared-follow {self.node}")

    def fail(self) -> None:
        self.ended = True
        self._ready.set()
        self._warm.set()
        self._owner.forget(self)

    async def settled(self, start: Start) -> None:
        """Until the share can tell whether `start` may join (bounded by JOIN_WAIT, and by
        CATCH_UP_WAIT for a last-N start)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(JOIN_WAIT):
                await self._ready.wait()
        if start.after is None and start.last:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CATCH_UP_WAIT):
                    await self._warm.wait()

    def _check_warm(self) -> None:
        # Past its catch-up, the share's last events are the journal's last: once N events
        # came, or as many as the node skipped back (v1 says so in X-Journal-Skip-Prev).
        events, skipped = self._events, self._skip_prev
        if events >= self._plan.start.last or (skipped is not None and events >= skipped):
            self._warm.set()

    # Joining --------------------------------------------------------------------------

    def replay(self, start: Start) -> tuple[bytes, Headers] | None:
        """What a caller starting at `start` gets before the live events, with the headers
        the node would send it; None when the share cannot give it exactly what the node
        would."""
        headers = self.headers
        if headers is None or self.ended or not self._joinable:
            return None
        ring = self._ring
        if start.after is not None:
            for index in range(len(ring) - 1, -1, -1):
                if ring[index][0] == start.after:
                    return _blocks(ring, index + 1), _skipped(headers, 0)
            return None
        if start.last:
            # The last N events of a share are the journal's last N (its history is a
            # contiguous suffix of the matching entries). Fewer than N: only when the node
            # skipped back fewer than N at the share's start did the share see every one.
            count = start.last
            if self._events < count:
                if self._skip_prev is None or self._events < self._skip_prev:
                    return None
                count = self._events
            if len(ring) < count:
                return None
            return _blocks(ring, len(ring) - count), _skipped(headers, count)
        return (_blocks(ring, 0), headers) if self._whole else None

    def attach(self, follower: SharedFollow) -> None:
        if len(self.followers) == 1:  # one alone paced the pump: no longer
            next(iter(self.followers)).release()
        self.followers.add(follower)

    def detach(self, follower: SharedFollow) -> None:
        self.followers.discard(follower)
        if not self.followers:
            self.close()

    def close(self) -> None:
        self.ended = True
        self._owner.forget(self)
        if self._task is not None:
            self._task.cancel()

    # The pump -------------------------------------------------------------------------

    async def _pump(self, current: UpstreamResponse) -> None:
        owner = self._owner
        owner.metrics.shared_upstreams += 1
        framer = SseFramer()
        delays = owner.policy.delays()
        outcome = Outcome.BROKEN
        try:
            while True:
                progressed = False
                try:
                    async for chunk in current.chunks():
                        events = framer.feed(chunk)
                        if events:
                            progressed = True
                            self._fan_out(events, framer.resumable)
                            if len(self.followers) == 1:  # alone: it paces the share
                                await next(iter(self.followers)).drained()
                    log.info("node %s: shared event stream ended", self.node)
                except UpstreamError as exc:
                    owner.failed(self.node, exc, "shared event stream broken")
                if not framer.resumable:
                    return
                framer.discard_partial()
                if progressed:
                    delays = owner.policy.delays()
                with anyio.CancelScope(shield=True):
                    await current.aclose()
                resumed = await self._resume(framer.last_id, delays)
                if resumed is None:
                    outcome = Outcome.COMPLETE
                    return
                current = resumed
        finally:
            owner.metrics.shared_upstreams -= 1
            with anyio.CancelScope(shield=True):
                await current.aclose()
            self.ended = True
            owner.forget(self)
            for follower in self.followers:
                follower.finish(outcome)

    def _fan_out(self, events: bytes, resumable: bool) -> None:
        if resumable:
            self._remember(events)
        else:  # part of an oversized event: nothing to join at any more
            self._joinable = False
        followers = self.followers
        if self._entries is not None:
            entries = self._entries.feed(events)
            self._owner.metrics.entries_relayed += entries * len(followers)
        now = asyncio.get_running_loop().time()
        for follower in followers:
            follower.offer(events, now)

    def _remember(self, events: bytes) -> None:
        ring = self._ring
        for event in _events(events):
            ring.append(event)
            self._ring_bytes += len(event[1])
            self._events += 1
        while len(ring) > RING_EVENTS or self._ring_bytes > RING_BYTES:
            self._ring_bytes -= len(ring.popleft()[1])
            self._whole = False
        if not self._warm.is_set():
            self._check_warm()

    async def _resume(
        self, last_id: str | None, delays: Iterator[float]
    ) -> UpstreamResponse | None:
        owner, plan = self._owner, self._plan
        for delay in delays:
            self._fan_out(RECONNECTING, True)
            await anyio.sleep(delay)
            call = plan.call if last_id is None else plan.call.resumed(last_id)
            try:
                response = await owner.upstream.open(plan.base_url, call)
            except UpstreamError as exc:
                owner.failed(self.node, exc, "cannot resume yet")
                continue
            if response.status_code == 200 and response.media_type == SSE:
                owner.metrics.resumes += 1
                log.info("node %s: shared event stream resumed after %s", self.node, last_id)
                return response
            with anyio.CancelScope(shield=True):
                await response.aclose()
            owner.metrics.upstream_error(f"status_{response.status_code}")
            if response.status_code < 500:
                break
        log.warning("node %s: gave up resuming the shared event stream", self.node)
        return None


class SharedFollows:
    """The gateway's shares, by key. Built in the lifespan, closed there (`aclose`)."""

    def __init__(
        self,
        upstream: Upstream,
        *,
        metrics: ProxyMetrics,
        policy: ResumePolicy,
        send_timeout: float = SEND_TIMEOUT,
        queue_bytes: int = QUEUE_BYTES,
    ) -> None:
        self.upstream = upstream
        self.metrics = metrics
        self.policy = policy
        self._send_timeout = send_timeout
        self._queue_bytes = queue_bytes
        self._shares: dict[Key, Share] = {}

    def __len__(self) -> int:
        return len(self._shares)

    def plan(self, base_url: str, call: UpstreamCall) -> Plan | None:
        start = follow_start(call)
        if start is None:
            return None
        accept = call.header(b"accept") or ""
        # The share's own request: the route's path and query, Accept, no caller's details.
        shared = UpstreamCall(
            method="GET",
            path=call.path,
            query=call.query,
            headers=((b"accept", accept.encode("latin-1")),),
            node=call.node,
            uid=None,
            client=None,
            scheme=call.scheme,
            token=call.token,
        )
        return Plan((base_url, call.path, call.query, accept), start, base_url, shared)

    async def join(self, plan: Plan) -> SharedFollow | None:
        """A follower of the share under `plan`'s key, or None (the caller opens its own)."""
        share = self._shares.get(plan.key)
        if share is None:
            return None
        await share.settled(plan.start)
        joined = share.replay(plan.start)
        if joined is None:
            return None
        return self._follower(share, *joined)

    def starting(self, plan: Plan) -> Share | None:
        """A new share under `plan`'s key, for its caller to open (`begin` or `fail`), or None
        when the plan cannot start one (a `Last-Event-ID`: it relays alone)."""
        if plan.start.after is not None:
            return None
        share = Share(self, plan)
        self._shares[plan.key] = share  # a share that could not take this caller is left be
        return share

    def first(self, share: Share, opened: UpstreamResponse, headers: Headers) -> SharedFollow:
        follower = self._follower(share, b"", headers)
        share.begin(opened, headers)
        return follower

    def _follower(self, share: Share, replay: bytes, headers: Headers) -> SharedFollow:
        follower = SharedFollow(
            share,
            replay,
            headers=headers,
            metrics=self.metrics,
            queue_bytes=self._queue_bytes,
            send_timeout=self._send_timeout,
        )
        share.attach(follower)
        return follower

    def forget(self, share: Share) -> None:
        if self._shares.get(share.key) is share:
            del self._shares[share.key]

    def failed(self, node: str, exc: UpstreamError, what: str) -> None:
        self.metrics.upstream_error(exc.kind)
        log.warning("node %s: %s: %s (%r)", node, what, exc.message, exc.__cause__)

    async def aclose(self) -> None:
        for share in list(self._shares.values()):
            share.close()


__all__ = [
    "CATCH_UP_WAIT",
    "JOIN_WAIT",
    "RING_BYTES",
    "RING_EVENTS",
    "Plan",
    "Share",
    "SharedFollows",
]
