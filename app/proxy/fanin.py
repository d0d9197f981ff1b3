"""Fan-in: the upstream reads of a merged stream, one per agent, and what they deliver.

Each agent is read through its node reader's v1 API with the gateway's own credential,
narrowed to the caller's visible containers on that agent (`filter=CONTAINER_ID:…`, which
journald ORs) and to the client's other filters (ANDed by field). Ranges are read as NDJSON
and streams as SSE: both carry every entry's cursor, which orders and resumes the merge.

A node reader that refuses a resume cursor (400: not found, for instance because the task
whose entry it names is no longer in the filter) is asked again from the cursor's time, and
what it sends up to and including the cursor's own entry is dropped: exact either way.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import quote

import anyio

from app.journal.encoders import JSON, SSE
from app.proxy.call import TokenProvider, Upstream, UpstreamCall, UpstreamResponse
from app.proxy.errors import UpstreamError
from app.proxy.merge_cursor import after, cursor_realtime
from app.proxy.merge_entry import BadEntry, EventParser, LineParser, MergedEntry

log = logging.getLogger(__name__)

RANGE_PATH = "/v1/range/"
STREAM_PATH = "/v1/stream/"
ERROR_BODY_LIMIT = 512


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """One agent of a merged read: where its reader is, and which containers to read."""

    agent_id: str
    reader_url: str
    containers: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class MergePlan:
    """The agents a merged read covers (by id); `note`: what a stream tells its client about
    the plan (agents left out by the agent cap), shown again whenever it changes."""

    sources: Mapping[str, SourceSpec]
    note: str = ""


@dataclass(frozen=True, slots=True)
class Start:
    """Where an agent's read starts: after `cursor`, else at `since` (realtime µs), else at
    the head of its journal."""

    cursor: str | None = None
    since: int | None = None


@dataclass(frozen=True, slots=True)
class Requester:
    """Who the reads are for (audit and forwarding headers), and the gateway's credential."""

    uid: str
    client: str | None
    scheme: str
    token: TokenProvider
    filters: tuple[tuple[str, str], ...] = ()  # the client's, on fields the gateway leaves
    until: int | None = None


@dataclass(frozen=True, slots=True)
class Opened:
    response: UpstreamResponse
    # Drop entries up to and including this cursor's (a refused cursor, read from its time).
    guard: str | None = None


def upstream_query(
    spec: SourceSpec, start: Start, requester: Requester, *, skip_prev: int = 0, limit: int = 0
) -> bytes:
    params = [("filter", f"CONTAINER_ID:{c}") for c in spec.containers]
    params += [("filter", f"{name}:{value}") for name, value in requester.filters]
    if start.cursor is not None:
        params.append(("cursor", start.cursor))
    elif start.since is not None:
        params.append(("since", str(start.since)))
    if requester.until is not None:
        params.append(("until", str(requester.until)))
    if skip_prev:
        params.append(("skip_prev", str(skip_prev)))
    if limit:
        params.append(("limit", str(limit)))
    return "&".join(f"{k}={quote(v, safe='')}" for k, v in params).encode("ascii")


class SourceOpener:
    """Opens an agent's read on its node reader."""

    def __init__(self, upstream: Upstream, requester: Requester) -> None:
        self.upstream = upstream
        self.requester = requester

    def call(
        self, spec: SourceSpec, start: Start, *, stream: bool, skip_prev: int = 0, limit: int = 0
    ) -> UpstreamCall:
        r = self.requester
        accept = SSE if stream else JSON
        return UpstreamCall(
            method="GET",
            path=STREAM_PATH if stream else RANGE_PATH,
            query=upstream_query(spec, start, r, skip_prev=skip_prev, limit=limit),
            headers=((b"accept", accept.encode()),),
            node=spec.agent_id,
            uid=r.uid,
            client=r.client,
            scheme=r.scheme,
            token=r.token,
        )

    async def open(
        self, spec: SourceSpec, start: Start, *, stream: bool, skip_prev: int = 0, limit: int = 0
    ) -> Opened:
        """Raises `UpstreamError`; any status comes back for the caller to judge."""
        call = self.call(spec, start, stream=stream, skip_prev=skip_prev, limit=limit)
        response = await self.upstream.open(spec.reader_url, call)
        if response.status_code != 400 or start.cursor is None:
            return Opened(response)
        await close_quietly(response)
        log.info("agent %s: cursor refused, reading from its time instead", spec.agent_id)
        since = Start(since=cursor_realtime(start.cursor))
        call = self.call(spec, since, stream=stream, skip_prev=skip_prev, limit=limit)
        return Opened(await self.upstream.open(spec.reader_url, call), guard=start.cursor)


async def close_quietly(response: UpstreamResponse) -> None:
    with anyio.CancelScope(shield=True):
        await response.aclose()


async def refusal(response: UpstreamResponse) -> str:
    """Why a node reader did not serve the read, in words fit for the client (no address)."""
    if response.status_code in (401, 403):
        return "its log reader refused the gateway's credential"
    body = b""
    try:
        async for chunk in response.chunks():
            body += chunk
            if len(body) >= ERROR_BODY_LIMIT:
                break
    except UpstreamError:
        pass
    first = body[:ERROR_BODY_LIMIT].decode("utf-8", "replace").strip().splitlines()
    detail = f": {first[0]}" if first and response.status_code < 500 else ""
    return f"its log reader answered {response.status_code}{detail}"


def past_guard(entries: list[MergedEntry], guard: str) -> tuple[list[MergedEntry], str | None]:
    """Entries after `guard`'s own, and the guard still to apply (None once passed)."""
    for index, entry in enumerate(entries):
        if after(entry.cursor, guard):
            return entries[index:], None
    return [], guard


async def range_batches(opened: Opened, agent: str) -> AsyncIterator[list[MergedEntry]]:
    """A 200 NDJSON range body as batches of entries; raises `UpstreamError`/`BadEntry`."""
    parser = LineParser(agent)
    guard = opened.guard
    async for chunk in opened.response.chunks():
        batch = parser.feed(chunk)
        if guard is not None:
            batch, guard = past_guard(batch, guard)
        if batch:
            yield batch
    parser.close()


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
    """Follows one agent for a merged stream until cancelled: reconnects after failures
    (with `backoff`) from the last entry it received, and re-reads with new containers when
    retargeted, from the same place."""

    spec: SourceSpec
    start: Start
    opener: SourceOpener
    sink: FeedSink
    backoff: Backoff = field(default_factory=Backoff)
    clock: Callable[[], float] = time.monotonic
    cursor: str | None = None  # the last entry received
    _scope: anyio.CancelScope | None = None
    _down: bool = False

    def retarget(self, spec: SourceSpec) -> None:
        """Read other containers from now on (or another address), without a gap."""
        if spec == self.spec:
            return
        self.spec = spec
        if self._scope is not None:
            self._scope.cancel()

    async def run(self) -> None:
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


__all__ = [
    "AgentFeed",
    "Backoff",
    "FeedSink",
    "MergePlan",
    "Opened",
    "Requester",
    "SourceOpener",
    "SourceSpec",
    "Start",
    "close_quietly",
    "past_guard",
    "range_batches",
    "refusal",
    "upstream_query",
]
