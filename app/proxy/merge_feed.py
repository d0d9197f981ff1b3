"""One agent's follow for a merged stream (`AgentFeed`), and the catch-up read that brings a
task joining an agent already in the stream up to date.

A feed reconnects after failures (with `Backoff`) from the last entry it received, so a
node reader that dies and comes back loses nothing and repeats nothing. When the agent's
containers change it re-reads from the same place with the new filter; a container that was
added may have written lines before that place (it started before the gateway's cluster
state showed it), so those are read once by a catch-up range — from the stream's origin up
to the place — and delivered marked `catchup`: they do not move the agent's position in the
composite cursor, which stays exact for everything else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import anyio

from app.journal.encoders import SSE
from app.proxy.errors import UpstreamError
from app.proxy.fanin import (
    Opened,
    SourceOpener,
    SourceSpec,
    Start,
    close_quietly,
    past_guard,
    range_batches,
    refusal,
)
from app.proxy.merge_cursor import after
from app.proxy.merge_entry import BadEntry, EventParser, MergedEntry

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


@dataclass
class AgentFeed:
    """Follows `spec`'s agent from `start` until cancelled. `origin`: where the stream as a
    whole starts, for the catch-up of containers that join later."""

    spec: SourceSpec
    start: Start
    opener: SourceOpener
    sink: FeedSink
    backoff: Backoff = field(default_factory=Backoff)
    origin: Start = field(default_factory=Start)
    clock: Callable[[], float] = time.monotonic
    cursor: str | None = None  # the last entry received
    _scope: anyio.CancelScope | None = None
    _down: bool = False
    _catch_ups: set[asyncio.Task[None]] = field(default_factory=set)

    def retarget(self, spec: SourceSpec) -> None:
        """Read other containers from now on (or another address), without a gap."""
        if spec == self.spec:
            return
        added = tuple(sorted(set(spec.containers) - set(self.spec.containers)))
        self.spec = spec
        if added and self.cursor is not None:
            joined = SourceSpec(spec.agent_id, spec.reader_url, added)
            task = asyncio.create_task(self._catch_up(joined, self.cursor))
            self._catch_ups.add(task)
            task.add_done_callback(self._catch_ups.discard)
        if self._scope is not None:
            self._scope.cancel()

    async def run(self) -> None:
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

    def _start(self) -> Start:
        return Start(cursor=self.cursor) if self.cursor is not None else self.start

    async def _attempt(self) -> tuple[str, bool]:
        """Read until the stream fails; why it ended, and whether it was ever open."""
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
            await self._read(opened)
            return "its event stream ended", True
        except UpstreamError as exc:
            return exc.message, True
        except BadEntry as exc:
            return f"its log reader sent a malformed entry ({exc})", True
        finally:
            await close_quietly(response)

    async def _read(self, opened: Opened) -> None:
        agent = self.spec.agent_id
        parser = EventParser(agent)
        guard = opened.guard
        clock = self.clock
        async for chunk in opened.response.chunks():
            batch = parser.feed(chunk, clock())
            if guard is not None:
                batch, guard = past_guard(batch, guard)
            if batch:
                self.cursor = batch[-1].cursor
                await self.sink.deliver(agent, batch)

    async def _catch_up(self, joined: SourceSpec, mark: str) -> None:
        """`joined`'s entries from the origin up to `mark` (the feed's place when they
        joined), read once as a range; a few retries, then given up with a log line."""
        delays = self.backoff.delays()
        for _ in range(CATCH_UP_ATTEMPTS):
            try:
                opened = await self.opener.open(joined, self.origin, stream=False)
            except UpstreamError as exc:
                log.info("agent %s: catch-up: %s", joined.agent_id, exc.message)
                await anyio.sleep(next(delays))
                continue
            try:
                if opened.response.status_code == 204:
                    return
                if opened.response.status_code != 200:
                    log.info(
                        "agent %s: catch-up: %s", joined.agent_id, await refusal(opened.response)
                    )
                    await anyio.sleep(next(delays))
                    continue
                await self._deliver_until(opened, joined.agent_id, mark)
                return
            except (UpstreamError, BadEntry) as exc:
                log.info("agent %s: catch-up broke off: %s", joined.agent_id, exc)
                await anyio.sleep(next(delays))
            finally:
                await close_quietly(opened.response)
        log.warning("agent %s: catch-up of %s given up", joined.agent_id, joined.containers)

    async def _deliver_until(self, opened: Opened, agent: str, mark: str) -> None:
        clock = self.clock
        async for batch in range_batches(opened, agent):
            before = [e for e in batch if not after(e.cursor, mark)]
            arrived = clock()
            for entry in before:
                entry.catchup = True
                entry.arrived = arrived
            if before:
                await self.sink.deliver(agent, before)
            if len(before) < len(batch):
                return


__all__ = ["CATCH_UP_ATTEMPTS", "AgentFeed", "Backoff", "FeedSink"]
