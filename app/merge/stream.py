"""Merged streams: one follow per agent (`AgentFeed`), merged within a reorder window
(`Reorderer`), written to the client with the composite cursor as every event's id.

The stream lives until the client leaves (or stops reading for `send_timeout`), or until its
caller's access ends (`app.authz.access`: the token expired, or it may read none of the tasks
any more), which ends it with a last `access-ended` event naming why. Meanwhile:

* when the IAM changes, the plan is asked again at once (the watcher's re-check): a caller
  who lost some of its tasks keeps a stream narrowed to the ones still allowed;
* every `membership_period` seconds the plan is asked again (the cluster state snapshot,
  re-authorized when it changed): a new agent joins from the origin (or from its position
  when it was in the stream before), an agent that left is dropped once its queued entries
  are out, and an agent whose containers changed is re-read from its last entry (the
  containers it gained are caught up from the origin: `app.merge.feed`);
* an agent resumed from a composite cursor (or returning after it left) first pays what its
  state owes: containers its place does not cover, and unpaid debts;
* an agent whose reader fails gets the comment `: agent <id> unavailable: <why>`, is not
  waited for, and is reconnected with backoff from the last entry received from it; the
  others keep flowing. In text and NDJSON streams, which have no comments, this is logged;
* an SSE stream idle for `heartbeat` seconds gets `: ping`.

Backpressure: at most `queue_limit` entries wait per agent; then that agent's read waits,
so a slow client slows the node readers rather than the gateway's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app.authz.access import ACCESS_REVOKED, Recheck, StreamAccess, final_event
from app.core.config import HEARTBEAT_INTERVAL
from app.core.errors import Forbidden, LogwayError
from app.journal.encoders import SSE
from app.merge.cursor import AgentState, Debt
from app.merge.entry import MergedEncoder, MergedEntry, Positions
from app.merge.fanin import MergePlan, SourceOpener, SourceSpec, Start
from app.merge.feed import AgentFeed, Backoff, owed
from app.merge.range import Starts
from app.merge.window import Reorderer
from app.proxy.metrics import ProxyMetrics

log = logging.getLogger(__name__)

REORDER_WINDOW = 0.25
MEMBERSHIP_PERIOD = 1.0
QUEUE_LIMIT = 10_000
SEND_TIMEOUT = 60.0

Replan = Callable[[], Awaitable[MergePlan]]
# Leases the caller's access for the stream, with how to decide it again.
Watch = Callable[[Recheck], StreamAccess]


@dataclass(frozen=True, slots=True)
class StreamOptions:
    window: float = REORDER_WINDOW
    heartbeat: float = HEARTBEAT_INTERVAL
    membership_period: float = MEMBERSHIP_PERIOD
    send_timeout: float = SEND_TIMEOUT
    queue_limit: int = QUEUE_LIMIT
    backoff: Backoff = field(default_factory=Backoff)


class _Stalled(Exception):
    """The client took nothing for `send_timeout` seconds."""


class _Run:
    """One merged stream's state: the feeds, the reorderer, what the client is owed."""

    def __init__(
        self,
        send: Send,
        *,
        replan: Replan,
        opener: SourceOpener,
        encoder: MergedEncoder,
        positions: Positions,
        starts: Starts,
        options: StreamOptions,
        metrics: ProxyMetrics,
        watch: Watch | None = None,
    ) -> None:
        self._send_raw = send
        self._watch = watch
        self._replanning = asyncio.Lock()  # the watcher's re-check and `_membership` alike
        self._replan = replan
        self._opener = opener
        self._encoder = encoder
        self._positions = positions
        self._starts = starts
        self._options = options
        self._metrics = metrics
        self._sse = encoder.media_type == SSE
        self._reorderer = Reorderer(options.window)
        self._feeds: dict[str, tuple[AgentFeed, asyncio.Task[None]]] = {}
        self._space: dict[str, asyncio.Event] = {}
        self._left: dict[str, AgentState] = {}  # agent -> where its feed stood, for a return
        self._wake = asyncio.Event()
        self._comments: list[str] = []
        self._plan: MergePlan | None = None
        self._ended: str | None = None  # why the caller's access ended
        self._late_seen = 0

    # FeedSink ---------------------------------------------------------------------------

    async def deliver(self, agent: str, entries: list[MergedEntry]) -> None:
        self._reorderer.push(agent, entries)
        self._wake.set()
        space = self._space.get(agent)
        while space is not None and self._reorderer.queued(agent) >= self._options.queue_limit:
            space.clear()
            await space.wait()

    def unavailable(self, agent: str, why: str) -> None:
        self._metrics.merged_source_failures += 1
        self._reorderer.set_live(agent, False)
        self._comment(f"agent {agent} unavailable: {why}")

    def available(self, agent: str) -> None:
        self._reorderer.set_live(agent, True)
        self._comment(f"agent {agent} available again")

    def owe(self, agent: str, debt: Debt) -> None:
        self._positions.owe(agent, debt)

    def settle(self, agent: str, debt: Debt) -> None:
        self._positions.settle(agent, debt)

    # membership --------------------------------------------------------------------------

    def _comment(self, text: str) -> None:
        if self._sse:
            self._comments.append(text)
            self._wake.set()
        else:
            log.info("merged stream: %s", text)

    def apply(self, plan: MergePlan) -> None:
        previous = self._plan
        self._plan = plan
        for agent, spec in plan.sources.items():
            current = self._feeds.get(agent)
            if current is not None:
                current[0].retarget(spec)
                continue
            if previous is not None:
                self._comment(f"agent {agent} joined")
            left = self._left.pop(agent, None)
            self._start(spec, left if left is not None else self._starts.state(agent))
        for agent in [a for a in self._feeds if a not in plan.sources]:
            self._stop(agent)
            self._comment(f"agent {agent} left")
        if plan.note and (previous is None or previous.note != plan.note):
            self._comment(plan.note)

    def _start(self, spec: SourceSpec, state: AgentState | None) -> None:
        agent = spec.agent_id
        start = self._starts.default if state is None else Start(cursor=state.cursor)
        feed = AgentFeed(
            spec,
            start,
            self._opener,
            self,
            self._options.backoff,
            origin=self._starts.default,
            owed=() if state is None else owed(state, spec),
        )
        self._positions.begin(agent, feed.cover)
        self._reorderer.add(agent)
        self._space[agent] = asyncio.Event()
        self._feeds[agent] = (feed, asyncio.create_task(feed.run(), name=f"merge-feed-{agent}"))

    def _stop(self, agent: str) -> None:
        feed, task = self._feeds.pop(agent)
        task.cancel()
        state = feed.state()
        if state is not None:
            self._left[agent] = state
        self._reorderer.remove(agent)
        self._space.pop(agent).set()

    async def close(self) -> None:
        tasks = [task for _, task in self._feeds.values()]
        for task in tasks:
            task.cancel()
        self._feeds.clear()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _update(self) -> bool:
        """Plan again and apply what changed; False when the caller may read no task now."""
        async with self._replanning:
            try:
                plan = await self._replan()
            except Forbidden:
                return False
            if plan != self._plan:
                self.apply(plan)
                self._wake.set()
            return True

    def _end(self, reason: str) -> None:
        if self._ended is None:
            self._ended = reason
        self._wake.set()

    async def _membership(self) -> None:
        while True:
            await asyncio.sleep(self._options.membership_period)
            try:
                if not await self._update():
                    self._end(ACCESS_REVOKED)
                    return
            except LogwayError as exc:
                log.info("merged stream keeps its agents: %s", exc.message)
            except Exception:  # a bug: keep streaming what we have, and say so in the log
                log.exception("merged stream: planning failed, keeping its agents")

    async def _until_access_ends(self, access: StreamAccess) -> None:
        self._end(await access.ended())

    # writing ----------------------------------------------------------------------------

    async def _send(self, data: bytes) -> None:
        self._metrics.bytes_relayed += len(data)
        try:
            async with asyncio.timeout(self._options.send_timeout):
                await self._send_raw(
                    {"type": "http.response.body", "body": data, "more_body": True}
                )
        except TimeoutError:
            raise _Stalled from None

    def _comments_out(self) -> bytes:
        data = "".join(f": {text}\n\n" for text in self._comments).encode("utf-8", "replace")
        self._comments.clear()
        return data

    async def run(self, notes: list[str], prelude: list[MergedEntry], plan: MergePlan) -> None:
        """Write until the client leaves (the caller cancels this) or loses its access."""
        for note in notes:
            self._comment(note)
        if self._comments:
            await self._send(self._comments_out())
        if prelude:
            self._metrics.merged_entries += len(prelude)
            await self._send(self._encoder.encode(prelude, self._positions))
        self.apply(plan)
        helpers = [asyncio.create_task(self._membership(), name="merge-membership")]
        access = self._watch(self._update) if self._watch is not None else None
        if access is not None:
            helpers.append(asyncio.create_task(self._until_access_ends(access)))
        try:
            await self._merge()
        finally:
            if access is not None:
                access.close()
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)

    async def _merge(self) -> None:
        reorderer, options, wake = self._reorderer, self._options, self._wake
        heartbeat = self._encoder.heartbeat()
        last_sent = time.monotonic()
        while True:
            wake.clear()
            if self._ended is not None:
                log.info("merged stream ended: %s", self._ended)
                if self._sse:
                    await self._send(self._comments_out() + final_event(self._ended))
                return
            if self._comments:
                await self._send(self._comments_out())
                last_sent = time.monotonic()
            now = time.monotonic()
            ready = reorderer.pop_ready(now)
            if ready:
                self._metrics.merged_entries += len(ready)
                if reorderer.late != self._late_seen:
                    self._metrics.merged_late_entries += reorderer.late - self._late_seen
                    self._late_seen = reorderer.late
                for agent, space in self._space.items():
                    if reorderer.queued(agent) < options.queue_limit:
                        space.set()
                data = self._encoder.encode(ready, self._positions)
                if data:
                    await self._send(data)
                    last_sent = time.monotonic()
                continue
            waits = [t for t in (reorderer.deadline(),) if t is not None]
            if heartbeat is not None:
                due = last_sent + options.heartbeat
                if due <= now:
                    await self._send(heartbeat)
                    last_sent = time.monotonic()
                    continue
                waits.append(due)
            timeout = max(0.0, min(waits) - now) if waits else None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await wake.wait()


class MergedStreamResponse(Response):
    def __init__(
        self,
        *,
        plan: MergePlan,
        replan: Replan,
        opener: SourceOpener,
        encoder: MergedEncoder,
        positions: Positions,
        starts: Starts,
        prelude: list[MergedEntry],
        notes: list[str],
        headers: Mapping[str, str],
        options: StreamOptions,
        metrics: ProxyMetrics,
        on_close: Callable[[], None],
        watch: Watch | None = None,
    ) -> None:
        super().__init__(status_code=200)
        self.raw_headers = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()
        ]
        self._plan = plan
        self._prelude = prelude
        self._notes = notes
        self._on_close = on_close
        self._metrics = metrics
        self._new_run = functools.partial(
            _Run,
            replan=replan,
            opener=opener,
            encoder=encoder,
            positions=positions,
            starts=starts,
            options=options,
            metrics=metrics,
            watch=watch,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._metrics.merged_active_streams += 1
        self._metrics.merged_streams_total += 1
        run: _Run | None = None
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            run = self._new_run(send)
            writer = asyncio.create_task(
                run.run(self._notes, self._prelude, self._plan), name="merge-writer"
            )
            watcher = asyncio.create_task(_disconnected(receive), name="merge-disconnect")
            try:
                await asyncio.wait({writer, watcher}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (writer, watcher):
                    task.cancel()
                await asyncio.gather(writer, watcher, return_exceptions=True)
            if writer.done() and not writer.cancelled():
                failure = writer.exception()
                if failure is None:
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                elif isinstance(failure, _Stalled):
                    self._metrics.stalled_clients += 1
                    log.warning("merged stream: client read nothing, stream closed")
                else:
                    log.error("merged stream failed", exc_info=failure)
        finally:
            if run is not None:
                await run.close()
            self._metrics.merged_active_streams -= 1
            self._on_close()


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


__all__ = [
    "MEMBERSHIP_PERIOD",
    "REORDER_WINDOW",
    "MergedStreamResponse",
    "Replan",
    "StreamOptions",
    "Watch",
]
