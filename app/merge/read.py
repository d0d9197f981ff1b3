"""A merged read from the route's question to the response: where each agent starts (the
origin, or a composite cursor's per-agent states), the last N of the merged whole when asked
for, then a range (`app.merge.range`) or a stream (`app.merge.stream`).

The route parses and checks the client's parameters (`Query`), builds the caller's plan
(403) and applies the caps (429); everything about positions, starts, agent states and
coverage happens here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from starlette.responses import Response

from app.merge.cursor import AgentState, CompositeCursor
from app.merge.entry import MergedEncoder, MergedEntry, Positions
from app.merge.fanin import MergePlan, Requester, SourceOpener, Start
from app.merge.plan import capped
from app.merge.range import Starts, begin_all, covers, last_entries, merged_range, open_all
from app.merge.stream import MergedStreamResponse, StreamOptions, Watch
from app.proxy.call import Upstream
from app.proxy.metrics import ProxyMetrics

STREAM_HEADERS = {
    "Cache-Control": "no-cache",
    "Access-Control-Allow-Origin": "*",
    "X-Accel-Buffering": "no",
}


class Plans(Protocol):
    """The caller's current plan (`app.merge.plan.Planner`), asked again as a stream runs."""

    async def plan(self) -> MergePlan: ...


@dataclass(frozen=True, slots=True)
class Query:
    """What the client asked of a merged read, parsed and checked by the route."""

    media: str
    limit: int = 0
    skip_next: int = 0
    skip_prev: int = 0
    since: int | None = None
    until: int | None = None
    cursor: CompositeCursor | None = None
    context: int = 0  # grep's: entries around each match, from its node reader


def _origin(query: Query) -> tuple[Positions, Starts]:
    """Where every agent starts: after its place in the cursor, else at the origin."""
    if query.cursor is not None:
        positions = Positions.resumed(query.cursor)
        return positions, Starts(query.cursor.states(), Start(since=query.cursor.origin))
    return Positions(query.since), Starts({}, Start(since=query.since))


async def read_range(
    plan: MergePlan,
    upstream: Upstream,
    requester: Requester,
    query: Query,
    *,
    metrics: ProxyMetrics,
    download: str | None = None,
) -> Response:
    """The plan's agents' ranges, merged in time order (`download`: gzipped, as the file
    `<download>.log.gz`)."""
    positions, starts = _origin(query)
    return await merged_range(
        plan,
        SourceOpener(upstream, requester),
        MergedEncoder(query.media, groups=query.context > 0),
        positions,
        starts,
        skip_prev=query.skip_prev,
        skip_next=query.skip_next,
        limit=query.limit,
        metrics=metrics,
        context=query.context,
        download=download,
    )


async def read_stream(
    planner: Plans,
    plan: MergePlan,
    upstream: Upstream,
    requester: Requester,
    query: Query,
    *,
    max_agents: int,
    options: StreamOptions,
    metrics: ProxyMetrics,
    on_close: Callable[[], None],
    watch: Watch | None = None,
) -> Response:
    """The plan's agents followed and merged (until the client leaves or `watch`'s lease on
    the caller's access ends); the plan is asked again as the stream runs
    (at most `max_agents` agents, those already streaming kept first). `on_close` runs when
    the stream ends; when this raises instead, the caller's own cleanup runs."""
    opener = SourceOpener(upstream, requester)
    encoder = MergedEncoder(query.media, groups=query.context > 0)
    positions, starts = _origin(query)
    prelude: list[MergedEntry] = []
    unavailable: dict[str, str] = {}
    if query.skip_prev:
        # The last N of the merged whole, then each agent follows on from its own last.
        opened, unavailable = await open_all(plan, opener, starts, skip_prev=query.skip_prev)
        agent_covers = covers(plan, starts, positions)
        tail = await last_entries(opened, query.skip_prev, agent_covers, context=query.context > 0)
        unavailable.update(tail.failed)
        prelude = tail.kept
        origin = prelude[0].ts if len(prelude) >= query.skip_prev else query.since
        positions = Positions(origin, tail.dropped)
        begin_all(positions, agent_covers)
        starts = Starts(
            {agent: AgentState(c, agent_covers[agent].members) for agent, c in tail.last.items()},
            Start(since=origin),
        )

    async def replan() -> MergePlan:
        nonlocal plan
        plan = capped(await planner.plan(), max_agents, keep=plan.sources)
        return plan

    return MergedStreamResponse(
        plan=plan,
        replan=replan,
        opener=opener,
        encoder=encoder,
        positions=positions,
        starts=starts,
        prelude=prelude,
        notes=[f"agent {a} unavailable: {why}" for a, why in sorted(unavailable.items())],
        headers={**STREAM_HEADERS, "Content-Type": encoder.media_type},
        options=options,
        metrics=metrics,
        on_close=on_close,
        watch=watch,
    )


__all__ = ["STREAM_HEADERS", "Plans", "Query", "read_range", "read_stream"]
