"""One agent's follow for a merged stream (`AgentFeed`), and the catch-up reads that bring
containers joining an agent already in the stream up to date.

A feed reconnects after failures (with `Backoff`) from the last entry it received, so a
node reader that dies and comes back loses nothing and repeats nothing. When the agent's
containers change it re-reads from the same place with the new filter; a container that was
added may have written lines before that place (it started before the gateway's cluster
state showed it), so those are owed: a `Debt` (from the origin up to the place) is recorded
at once in the client's position (`FeedSink.owe`) and paid off by a catch-up range whose
entries move only the debt's progress, the last one settling it (`FeedSink.settle` when
there was nothing to read). The follow waits while catch-ups run, so that a task's earlier
lines come before its later ones; another agent's are not held up. A debt that is not paid
off when the client leaves stays in the composite cursor, with its progress, and the resumed
stream pays the rest.

A feed that starts from an `AgentState` (a composite cursor, or its own state when the
agent left and came back) starts by paying what that state owes: the containers of the
agent it does not cover (from the origin up to its place) and its debts (from their
progress), each only for containers the caller may read now (`owed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Protocol

import anyio

from app.journal.encoders import SSE
from app.merge.cursor import AgentState, Debt, after, digest, digests
from app.merge.entry import BadEntry, Cover, EventParser, MergedEntry
from app.merge.fanin import (
    Opened,
    SourceOpener,
    SourceSpec,
    Start,
    close_quietly,
    past_guard,
    range_batches,
    refusal,
)
from app.proxy.errors import UpstreamError

log = logging.getLogger(__name__)

CATCH_UP_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays between attempts to reach an agent again; no limit on their number, since a
    merged stream keeps waiting for an agent as long as the cluster state lists it."""

    first: float = 0.2
    longest: float = 5.0

    def delays(self) -> Iterator[float]:
        delay = self.first
        while True:
            yield delay
            delay = min(delay * 2, self.longest)


class FeedSink(Protocol):
    async def deliver(self, agent: str, entries: list[MergedEntry]) -> None:
        """Take an agent's entries (in its journal order); may wait (backpressure)."""
        ...

    def unavailable(self, agent: str, why: str) -> None: ...

    def available(self, agent: str) -> None: ...

    def owe(self, agent: str, debt: Debt) -> None:
        """A catch-up of `debt` starts (or restarts): record it in the client's position."""
        ...

    def settle(self, agent: str, debt: Debt) -> None:
        """`debt` turned out to have nothing (more) to read."""
        ...


@dataclass(frozen=True, slots=True)
class CatchUp:
    """A debt, and the containers (ids, for the read) it is about."""

    debt: Debt
    containers: tuple[str, ...]


def owed(state: AgentState, spec: SourceSpec) -> tuple[CatchUp, ...]:
    """What a read of `spec` resuming from `state` must catch up: only `spec`'s containers
    (those the caller may read now) count; a container in a debt is owed from the debt's
    progress up to its end (never past the place, after which the follow reads it), any
    other container the state does not cover from the origin up to the place."""
    by_digest = {digest(c): c for c in spec.containers}
    out: list[CatchUp] = []
    in_debt: set[str] = set()
    place = state.cursor
    for debt in state.debts:
        mine = sorted(c for d, c in by_digest.items() if d in debt.members)
        in_debt.update(digests(mine))
        end = place if after(debt.end, place) else debt.end
        if mine and (debt.start is None or after(end, debt.start)):
            out.append(CatchUp(Debt(debt.start, end, digests(mine), debt.id), tuple(mine)))
    if state.members is not None:
        new = sorted(c for d, c in by_digest.items() if d not in state.members and d not in in_debt)
        if new:
            out.append(CatchUp(Debt(None, place, digests(new)), tuple(new)))
    return tuple(out)


@dataclass
class AgentFeed:
    """Follows `spec`'s agent from `start` until cancelled, paying `owed` first. `origin`:
    where the stream as a whole starts, for the catch-up of containers that join later."""

    spec: SourceSpec
    start: Start
    opener: SourceOpener
    sink: FeedSink
    backoff: Backoff = field(default_factory=Backoff)
    origin: Start = field(default_factory=Start)
    clock: Callable[[], float] = time.monotonic
    owed: tuple[CatchUp, ...] = ()
    cursor: str | None = None  # the last entry received
    _scope: anyio.CancelScope | None = None
    _down: bool = False
    _catch_ups: set[asyncio.Task[None]] = field(default_factory=set)
    _debts: dict[int, CatchUp] = field(default_factory=dict)  # unpaid, with their progress
    _cover: Cover | None = None

    def __post_init__(self) -> None:
        self._cover = Cover(self.spec.containers)

    @property
    def cover(self) -> Cover:
        assert self._cover is not None
        return self._cover

    def state(self) -> AgentState | None:
        """Where this feed stands (for the agent's return after it left the stream)."""
        place = self.cursor if self.cursor is not None else self.start.cursor
        if place is None:
            return None
        debts = tuple(job.debt for job in self._debts.values())
        return AgentState(place, self.cover.members, debts)

    def retarget(self, spec: SourceSpec) -> None:
        """Read other containers from now on (or another address), without a gap."""
        if spec == self.spec:
            return
        added = tuple(sorted(set(spec.containers) - set(self.spec.containers)))
        self.spec = spec
        self._cover = Cover(spec.containers)
        place = self.cursor if self.cursor is not None else self.start.cursor
        if added and place is not None:
            self._pay(CatchUp(Debt(None, place, digests(added)), added))
        if self._scope is not None:
            self._scope.cancel()

    def _pay(self, job: CatchUp) -> None:
        self._debts[job.debt.id] = job
        self.sink.owe(self.spec.agent_id, job.debt)
        task = asyncio.create_task(self._catch_up(job))
        self._catch_ups.add(task)
        task.add_done_callback(self._catch_ups.discard)

    async def run(self) -> None:
        for job in self.owed:
            self._pay(job)
        try:
            await self._follow()
        finally:
            for task in list(self._catch_ups):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*self._catch_ups, return_exceptions=True)

    async def _follow(self) -> None:
        delays = self.backoff.delays()
        while True:
            await self._caught_up()
            with anyio.CancelScope() as scope:
                self._scope = scope
                why, delivered = await self._attempt()
                if delivered:
                    delays = self.backoff.delays()
                if not self._down:
                    self._down = True
                    self.sink.unavailable(self.spec.agent_id, why)
                log.info("agent %s: %s", self.spec.agent_id, why)
                await anyio.sleep(next(delays))
            self._scope = None

    async def _caught_up(self) -> None:
        """Catch-ups first: the follow (re)opens once they are done (paid, or given up), so
        that a task's caught-up lines come before its new ones."""
        while self._catch_ups:
            await asyncio.wait(set(self._catch_ups))

    def _start(self) -> Start:
        return Start(cursor=self.cursor) if self.cursor is not None else self.start

    async def _attempt(self) -> tuple[str, bool]:
        """Read until the stream fails; why it ended, and whether it was ever open."""
        cover = self.cover  # what this connection's filter covers
        try:
            opened = await self.opener.open(self.spec, self._start(), stream=True)
        except UpstreamError as exc:
            return exc.message, False
        response = opened.response
        try:
            if response.status_code != 200 or response.media_type != SSE:
                return await refusal(response), False
            if self._down:
                self._down = False
                self.sink.available(self.spec.agent_id)
            await self._read(opened, cover)
            return "its event stream ended", True
        except UpstreamError as exc:
            return exc.message, True
        except BadEntry as exc:
            return f"its log reader sent a malformed entry ({exc})", True
        finally:
            await close_quietly(response)

    async def _read(self, opened: Opened, cover: Cover) -> None:
        agent = self.spec.agent_id
        parser = EventParser(agent)
        guard = opened.guard
        clock = self.clock
        async for chunk in opened.response.chunks():
            batch = parser.feed(chunk, clock())
            if guard is not None:
                batch, guard = past_guard(batch, guard)
            batch = opened.kept(batch)
            if batch:
                for entry in batch:
                    entry.cover = cover
                self.cursor = _placed(batch) or self.cursor
                await self.sink.deliver(agent, batch)

    async def _catch_up(self, job: CatchUp) -> None:
        """`job`'s entries after its debt's progress up to its end, read as a range; a few
        retries (each from the progress made), then given up with a log line: the debt stays
        in the client's position, for a resume to pay."""
        agent = self.spec.agent_id
        joined = SourceSpec(agent, self.spec.reader_url, job.containers)
        delays = self.backoff.delays()
        for _ in range(CATCH_UP_ATTEMPTS):
            debt = self._debts[job.debt.id].debt
            start = self.origin if debt.start is None else Start(cursor=debt.start)
            try:
                opened = await self.opener.open(joined, start, stream=False)
            except UpstreamError as exc:
                log.info("agent %s: catch-up: %s", agent, exc.message)
                await anyio.sleep(next(delays))
                continue
            try:
                if opened.response.status_code == 204:
                    await self._paid(debt, [])
                    return
                if opened.response.status_code != 200:
                    log.info("agent %s: catch-up: %s", agent, await refusal(opened.response))
                    await anyio.sleep(next(delays))
                    continue
                await self._deliver_until(opened, job)
                return
            except (UpstreamError, BadEntry) as exc:
                log.info("agent %s: catch-up broke off: %s", agent, exc)
                await anyio.sleep(next(delays))
            finally:
                await close_quietly(opened.response)
        log.warning("agent %s: catch-up of %s given up", agent, job.containers)

    async def _deliver_until(self, opened: Opened, job: CatchUp) -> None:
        """Deliver the range's entries up to the debt's end, each one behind, so that the
        last can be marked as settling the debt once the end is known."""
        agent, clock, end = self.spec.agent_id, self.clock, job.debt.end
        held: list[MergedEntry] = []
        async for batch in range_batches(opened, agent):
            before = held + [e for e in batch if not after(e.cursor, end)]
            arrived = clock()
            for entry in before:
                entry.arrived = arrived
            if len(before) - len(held) < len(batch):  # past the end
                await self._paid(self._debts[job.debt.id].debt, before)
                return
            held = before[-1:]
            if len(before) > 1:
                await self._deliver_debt(job, before[:-1])
        await self._paid(self._debts[job.debt.id].debt, held)

    async def _deliver_debt(self, job: CatchUp, entries: list[MergedEntry]) -> None:
        debt = self._debts[job.debt.id].debt
        for entry in entries:
            entry.debt = debt
        start = _placed(entries) or debt.start
        self._debts[debt.id] = CatchUp(replace(debt, start=start), job.containers)
        await self.sink.deliver(self.spec.agent_id, entries)

    async def _paid(self, debt: Debt, last: list[MergedEntry]) -> None:
        """The debt's last entries (the final one settling it), or, when nothing was ever
        read for it (every read entry is held back until the next, so a retry re-reads the
        last), a settlement at once."""
        del self._debts[debt.id]
        if not last:
            self.sink.settle(self.spec.agent_id, debt)
            return
        for entry in last:
            entry.debt = debt
        last[-1].settles = True
        await self.sink.deliver(self.spec.agent_id, last)


def _placed(entries: list[MergedEntry]) -> str | None:
    """The cursor of the last entry that is a place (not a search's late before-context)."""
    for entry in reversed(entries):
        if not entry.late:
            return entry.cursor
    return None


__all__ = ["CATCH_UP_ATTEMPTS", "AgentFeed", "Backoff", "CatchUp", "FeedSink", "owed"]
