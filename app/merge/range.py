"""Merged ranges: every agent's range read at once, merged by timestamp, sent as it merges.

* No `skip_prev`: a streaming k-way merge; `skip_next` drops the first entries of the merged
  whole and `limit` stops it (every agent is closed then).
* `skip_prev=N`: the last N of the merged whole. Each agent is asked for its own last N,
  which must contain its share of the merged last N; they are merged and the last N kept.

An agent whose reader cannot serve the read is left out and named in the
`X-Logway-Unavailable-Agents` header (and, in an event stream, a comment before the first
event); when no agent can serve it the answer is the first agent's 502/503/504. A body cut
short after the first byte ends without its final chunk, as relayed ranges do.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import zlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import anyio
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from app.journal.encoders import SSE
from app.merge.cursor import AgentState
from app.merge.entry import BadEntry, Cover, MergedEncoder, MergedEntry, Positions, is_match
from app.merge.fanin import (
    MergePlan,
    Opened,
    SourceOpener,
    Start,
    close_quietly,
    range_batches,
    refusal,
)
from app.merge.feed import owed
from app.merge.window import merge_batches
from app.proxy.errors import UpstreamError
from app.proxy.metrics import ProxyMetrics

log = logging.getLogger(__name__)

UNAVAILABLE_HEADER = "X-Logway-Unavailable-Agents"
COMMON_HEADERS = {"Cache-Control": "no-cache", "Access-Control-Allow-Origin": "*"}
GZIP_WBITS = 31  # zlib: a gzip container


@dataclass(frozen=True, slots=True)
class Starts:
    """Where each agent's read starts: its own state (a place, what it covers and owes), or
    `default` (the origin)."""

    states: Mapping[str, AgentState]
    default: Start

    def of(self, agent: str) -> Start:
        state = self.states.get(agent)
        return self.default if state is None else Start(cursor=state.cursor)

    def state(self, agent: str) -> AgentState | None:
        return self.states.get(agent)


async def open_all(
    plan: MergePlan, opener: SourceOpener, starts: Starts, *, skip_prev: int = 0, limit: int = 0
) -> tuple[dict[str, Opened], dict[str, str]]:
    """Every agent's range at once: the 200s by agent id (sorted), and why the others
    failed. A 204 (nothing matches) is neither."""

    async def one(agent: str) -> Opened | str | None:
        spec = plan.sources[agent]
        try:
            opened = await opener.open(
                spec, starts.of(agent), stream=False, skip_prev=skip_prev, limit=limit
            )
        except UpstreamError as exc:
            return exc.message
        if opened.response.status_code == 200:
            return opened
        try:
            return None if opened.response.status_code == 204 else await refusal(opened.response)
        finally:
            await close_quietly(opened.response)

    agents = sorted(plan.sources)
    results = await asyncio.gather(*(one(agent) for agent in agents))
    ok: dict[str, Opened] = {}
    failed: dict[str, str] = {}
    for agent, result in zip(agents, results, strict=True):
        if isinstance(result, Opened):
            ok[agent] = result
        elif isinstance(result, str):
            failed[agent] = result
    return ok, failed


async def close_all(opened: Mapping[str, Opened]) -> None:
    for one in opened.values():
        await close_quietly(one.response)


@dataclass
class Tail:
    """The last N of the merged whole, and where each agent stands after reading it."""

    kept: list[MergedEntry]
    last: dict[str, str]  # agent -> cursor of the last entry it sent (kept or not)
    dropped: dict[str, str]  # agent -> cursor of its last entry older than the kept ones
    failed: dict[str, str]  # agent -> why its range broke off (its entries left out)


def covers(plan: MergePlan, starts: Starts, positions: Positions) -> dict[str, Cover]:
    """What each agent's read covers. What the agents' starts owe (containers their places
    do not cover) is recorded in `positions` but not read by a range: the composite cursor
    keeps it owed, for a stream resumed from the range's ids to pay."""
    out = {}
    for agent, spec in plan.sources.items():
        out[agent] = Cover(spec.containers)
        state = starts.state(agent)
        if state is not None:
            for job in owed(state, spec):
                positions.owe(agent, job.debt)
    return out


def begin_all(positions: Positions, covers: Mapping[str, Cover]) -> None:
    for agent, cover in covers.items():
        positions.begin(agent, cover)


async def last_entries(
    opened: Mapping[str, Opened],
    n: int,
    covers: Mapping[str, Cover] | None = None,
    *,
    context: bool = False,
) -> Tail:
    """Read every agent's last-N range to the end and keep the merged last N (`context`: the
    last N matches, with what follows them and the first one's before-context)."""
    lists: list[list[MergedEntry]] = []
    failed: dict[str, str] = {}
    for agent in sorted(opened):
        entries: list[MergedEntry] = []
        cover = covers.get(agent) if covers is not None else None
        try:
            async for batch in range_batches(opened[agent], agent, cover):
                entries.extend(batch)
        except UpstreamError as exc:
            failed[agent] = exc.message
            continue
        except BadEntry as exc:
            failed[agent] = f"its log reader sent a malformed entry ({exc})"
            continue
        finally:
            await close_quietly(opened[agent].response)
        lists.append(entries)
    merged = list(heapq.merge(*lists, key=lambda e: e.ts))  # stable: ties by agent id
    last = {}  # (a search's before-context is never last: its match follows it)
    for entries in lists:
        placed = [e for e in entries if not e.late]
        if placed:
            last[placed[-1].agent] = placed[-1].cursor
    if not context:
        cut = max(0, len(merged) - n)
        return Tail(merged[cut:], last, {e.agent: e.cursor for e in merged[:cut]}, failed)
    kept, dropped = _last_matches(merged, n)
    return Tail(kept, last, {e.agent: e.cursor for e in dropped if not e.late}, failed)


def _last_matches(merged: list[MergedEntry], n: int) -> tuple[list[MergedEntry], list[MergedEntry]]:
    """From the N-th last match on, with that match's before-context (its agent's late
    entries just before it, which the time order may have put behind other agents' entries);
    and what is left out before."""
    cut, seen = 0, 0
    for index in range(len(merged) - 1, -1, -1):
        if is_match(merged[index]):
            seen += 1
            if seen == n:
                cut = index
                break
    if cut == 0:
        return merged, []
    agent = merged[cut].agent
    before: set[int] = set()
    for index in range(cut - 1, -1, -1):
        entry = merged[index]
        if entry.agent != agent:
            continue
        if not entry.late:
            break
        before.add(index)
    head = [e for i, e in enumerate(merged[:cut]) if i in before]
    dropped = [e for i, e in enumerate(merged[:cut]) if i not in before]
    return head + merged[cut:], dropped


def _skip_and_limit(
    batches: AsyncIterator[list[MergedEntry]], skip: int, limit: int, context: int = 0
) -> AsyncIterator[list[MergedEntry]]:
    if context:
        return _matches_skip_and_limit(batches, skip, limit, context)

    async def gen() -> AsyncIterator[list[MergedEntry]]:
        to_skip, left = skip, limit or None
        async for batch in batches:
            if to_skip:
                taken = batch[:to_skip]
                batch = batch[len(taken) :]
                to_skip -= len(taken)
            if left is not None:
                batch = batch[:left]
                left -= len(batch)
            if batch:
                yield batch
            if left is not None and left <= 0:
                return

    return gen()


async def _matches_skip_and_limit(
    batches: AsyncIterator[list[MergedEntry]], skip: int, limit: int, context: int
) -> AsyncIterator[list[MergedEntry]]:
    """With context, skips and `limit` count matches (as on a node reader): everything up to
    the `skip`-th match is dropped; after the `limit`-th, only the after-context that follows
    it (at most `context` entries per agent, until the next match or before-context)."""
    to_skip, left = skip, limit or None
    trailing: dict[str, int] = {}  # after-context kept past the limit, per agent
    async for batch in batches:
        out: list[MergedEntry] = []
        for entry in batch:
            match = is_match(entry)
            if to_skip:
                to_skip -= match
                continue
            if left is not None and left <= 0:
                if match or entry.late or trailing.get(entry.agent, 0) >= context:
                    if out:
                        yield out
                    return
                trailing[entry.agent] = trailing.get(entry.agent, 0) + 1
            elif match and left is not None:
                left -= 1
            out.append(entry)
        if out:
            yield out


async def _listed(entries: list[MergedEntry], size: int = 500) -> AsyncIterator[list[MergedEntry]]:
    for i in range(0, len(entries), size):
        yield entries[i : i + size]


async def merged_range(
    plan: MergePlan,
    opener: SourceOpener,
    encoder: MergedEncoder,
    positions: Positions,
    starts: Starts,
    *,
    skip_prev: int,
    skip_next: int,
    limit: int,
    metrics: ProxyMetrics,
    context: int = 0,
    download: str | None = None,
) -> Response:
    """`download`: gzipped, as a file of that name (`<download>.log.gz`).
    `context`: a search with context (skips and `limit` count matches, app/journal/search.py)."""
    opened, failed = await open_all(plan, opener, starts, skip_prev=skip_prev)
    agent_covers = covers(plan, starts, positions)
    begin_all(positions, agent_covers)
    if failed and not opened and len(failed) == len(plan.sources):
        agent, why = next(iter(failed.items()))
        return JSONResponse(
            {"error": f"no agent could serve the read; agent {agent}: {why}", "node": agent},
            status_code=502,
            headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
        )
    headers = dict(COMMON_HEADERS)
    try:
        if skip_prev:
            tail = await last_entries(opened, skip_prev, agent_covers, context=context > 0)
            failed.update(tail.failed)
            skipped_prev, skipped_next = len(tail.kept), 0
            positions.cursors.update(tail.dropped)
            begin_all(positions, agent_covers)
            batches = _skip_and_limit(_listed(tail.kept), 0, limit, context)
        else:
            sources = [
                range_batches(opened[agent], agent, agent_covers[agent]) for agent in sorted(opened)
            ]
            skipped_prev, skipped_next = 0, skip_next
            batches = _skip_and_limit(merge_batches(sources), skip_next, limit, context)
        first = b""
        async for batch in batches:
            first = encoder.encode(batch, positions)
            metrics.merged_entries += len(batch)
            if first:
                break
    except (UpstreamError, BadEntry) as exc:
        await close_all(opened)
        log.warning("merged range failed before its first byte: %s", exc)
        return JSONResponse({"error": "an agent's range broke off"}, status_code=502)
    except BaseException:
        await close_all(opened)
        raise
    if failed:
        headers[UNAVAILABLE_HEADER] = ", ".join(sorted(failed))
    headers["X-Journal-Skip-Next"] = str(skipped_next)
    headers["X-Journal-Skip-Prev"] = str(skipped_prev)
    if not first:
        await close_all(opened)
        return Response(status_code=204, headers=headers)
    if encoder.media_type == SSE and failed:
        notes = "".join(f": agent {a} unavailable: {w}\n\n" for a, w in sorted(failed.items()))
        first = notes.encode() + first
    headers["Content-Type"] = encoder.media_type
    if download is not None:
        headers["Content-Type"] = "application/gzip"
        headers["Content-Disposition"] = f"attachment; filename={download}.log.gz"
    response = MergedRangeResponse(first, batches, encoder, positions, opened, headers, metrics)
    response.gzip = download is not None
    return response


class MergedRangeResponse(Response):
    """Sends the merge as it goes; the client's disconnect stops it and closes every agent."""

    def __init__(
        self,
        first: bytes,
        rest: AsyncIterator[list[MergedEntry]],
        encoder: MergedEncoder,
        positions: Positions,
        opened: Mapping[str, Opened],
        headers: Mapping[str, str],
        metrics: ProxyMetrics,
    ) -> None:
        super().__init__(status_code=200)
        self.raw_headers = [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()
        ]
        self._first = first
        self._rest = rest
        self._encoder = encoder
        self._positions = positions
        self._opened = opened
        self._metrics = metrics
        self.gzip = False  # a download: the body gzipped, as the node reader's downloads
        self._gzip: zlib._Compress | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        complete = False
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            async with anyio.create_task_group() as tasks:

                async def watch() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    tasks.cancel_scope.cancel()

                tasks.start_soon(watch)
                complete = await self._body(send)
                tasks.cancel_scope.cancel()
            if complete:
                tail = self._gzip.flush() if self._gzip is not None else b""
                await send({"type": "http.response.body", "body": tail, "more_body": False})
        finally:
            await close_all(self._opened)

    async def _body(self, send: Send) -> bool:
        if self.gzip:
            self._gzip = zlib.compressobj(wbits=GZIP_WBITS)
        await send(
            {"type": "http.response.body", "body": self._out(self._first), "more_body": True}
        )
        try:
            async for batch in self._rest:
                self._metrics.merged_entries += len(batch)
                data = self._out(self._encoder.encode(batch, self._positions))
                if data:
                    await send({"type": "http.response.body", "body": data, "more_body": True})
        except (UpstreamError, BadEntry) as exc:
            log.warning("merged range cut short: %s", exc)
            return False
        return True

    def _out(self, data: bytes) -> bytes:
        return self._gzip.compress(data) if self._gzip is not None and data else data


__all__ = [
    "UNAVAILABLE_HEADER",
    "MergedRangeResponse",
    "Starts",
    "Tail",
    "begin_all",
    "close_all",
    "covers",
    "last_entries",
    "merged_range",
    "open_all",
]
