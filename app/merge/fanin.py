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

import asyncio
import functools
import logging
import re
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

import anyio
import orjson

from app.core.credential import NodeTokenProvider
from app.journal.encoders import JSON, SSE
from app.merge.cursor import after, cursor_realtime
from app.merge.entry import SCHEDULER_SOURCE, Cover, LineParser, MergedEntry, mark_late
from app.proxy.call import Upstream, UpstreamCall, UpstreamResponse
from app.proxy.errors import UpstreamError, UpstreamTimeout

log = logging.getLogger(__name__)

RANGE_PATH = "/v1/range/"
STREAM_PATH = "/v1/stream/"
COMPONENT_PATH = "/v2/component/"
SCHEDULER_TAIL_FACTOR = 8
ERROR_BODY_LIMIT = 512


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """One agent of a merged read: where its reader is, and which containers to read.

    Or, with `unit` (`include=scheduler`, issue 18), the node a scheduler leads from, keyed
    `SCHEDULER_SOURCE`: that unit's lines (its v2 component route: `UNIT` or `_SYSTEMD_UNIT`),
    of which only those whose MESSAGE names one of `names` (app ids, or their descendants)
    are kept."""

    agent_id: str
    reader_url: str
    containers: tuple[str, ...]
    unit: str | None = None
    names: tuple[str, ...] = ()


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
    token: NodeTokenProvider
    filters: tuple[tuple[str, str], ...] = ()  # the client's, on fields the gateway leaves
    until: int | None = None
    grep: tuple[str, ...] = ()  # the client's patterns: every node reader searches its part
    # With grep: entries of the same task stream around each match, from its node reader.
    context: int = 0
    # How long a range waits for an agent's answer before leaving it out (a frozen reader
    # would otherwise hold the whole read for the upstream read timeout).
    answer_timeout: float | None = None


Keep = Callable[[MergedEntry], bool]


@dataclass(frozen=True, slots=True)
class Opened:
    response: UpstreamResponse
    # Drop entries up to and including this cursor's (a refused cursor, read from its time).
    guard: str | None = None
    keep: Keep | None = None  # only the entries it keeps count (a scheduler's unit)
    context: bool = False  # a search with context: before-context comes behind (late)

    def kept(self, entries: list[MergedEntry]) -> list[MergedEntry]:
        keep = self.keep
        return entries if keep is None else [e for e in entries if keep(e)]


# What may surround an app id in a message that names it: not another id character before
# it; after it, not another id character (a `/` names a descendant: `/prod` in `/prod/web`).
_ID_BEFORE = r"(?<![A-Za-z0-9._/-])"
_ID_AFTER = r"(?![A-Za-z0-9._-])"


@functools.lru_cache(maxsize=64)
def names_any(names: tuple[str, ...]) -> Keep:
    """Keeps the entries whose MESSAGE names one of `names` (app ids) or a descendant; the ids
    are matched literally (escaped), so the expression cannot backtrack on the message."""
    if not names:
        return lambda entry: False
    pattern = re.compile(
        _ID_BEFORE + "(?:" + "|".join(re.escape(n) for n in sorted(names)) + ")" + _ID_AFTER
    )

    def keep(entry: MergedEntry) -> bool:
        try:
            message = orjson.loads(entry.data)["fields"].get("MESSAGE")
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            return False
        if isinstance(message, list):  # the node's form of bytes that are not UTF-8
            message = bytes(message).decode("utf-8", "replace")
        return isinstance(message, str) and pattern.search(message) is not None

    return keep


def upstream_query(
    spec: SourceSpec, start: Start, requester: Requester, *, skip_prev: int = 0, limit: int = 0
) -> bytes:
    params = [("filter", f"CONTAINER_ID:{c}") for c in spec.containers]
    params += [("filter", f"{name}:{value}") for name, value in requester.filters]
    params += [("grep", pattern) for pattern in requester.grep]
    if requester.grep and requester.context:
        params.append(("context", str(requester.context)))
    if start.cursor is not None:
        params.append(("cursor", start.cursor))
    elif start.since is not None:
        params.append(("since", str(start.since)))
    if requester.until is not None:
        params.append(("until", str(requester.until)))
    if skip_prev and spec.unit is not None:
        # v2's form. Only the lines naming the app are kept, so more are read: the last N of
        # the merged whole holds those among the unit's last `SCHEDULER_TAIL_FACTOR` times N.
        params.append(("skip", f"-{skip_prev * SCHEDULER_TAIL_FACTOR}"))
    elif skip_prev:
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
        if spec.unit is not None:  # one URL for range and follow: the Accept header decides
            path = COMPONENT_PATH + quote(spec.unit, safe="")
        else:
            path = STREAM_PATH if stream else RANGE_PATH
        headers: tuple[tuple[bytes, bytes], ...] = ((b"accept", accept.encode()),)
        # A follow from an entry this agent delivered continues its earlier follow: also as
        # `Last-Event-ID` (which the reader takes over `cursor`), so that a search resumes
        # exactly (its groups, app/journal/search.py).
        if stream and start.cursor is not None:
            headers += ((b"last-event-id", start.cursor.encode("ascii", "replace")),)
        return UpstreamCall(
            method="GET",
            path=path,
            query=upstream_query(spec, start, r, skip_prev=skip_prev, limit=limit),
            headers=headers,
            node=spec.agent_id,
            uid=r.uid,
            client=r.client,
            scheme=r.scheme,
            token=r.token,
        )

    async def open(
        self, spec: SourceSpec, start: Start, *, stream: bool, skip_prev: int = 0, limit: int = 0
    ) -> Opened:
        """Raises `UpstreamError`; any status comes back for the caller to judge. A range's
        answer (its status and headers) is awaited at most `answer_timeout`."""
        limit_s = None if stream else self.requester.answer_timeout
        try:
            async with asyncio.timeout(limit_s):
                return await self._open(
                    spec, start, stream=stream, skip_prev=skip_prev, limit=limit
                )
        except TimeoutError:
            raise UpstreamTimeout(
                f"no answer within {limit_s:g} s (merge_agent_timeout)", node=spec.agent_id
            ) from None

    async def _open(
        self, spec: SourceSpec, start: Start, *, stream: bool, skip_prev: int, limit: int
    ) -> Opened:
        call = self.call(spec, start, stream=stream, skip_prev=skip_prev, limit=limit)
        keep = names_any(spec.names) if spec.unit is not None else None
        response = await self.upstream.open(spec.reader_url, call)
        context = bool(self.requester.grep and self.requester.context)
        if response.status_code != 400 or start.cursor is None:
            return Opened(response, keep=keep, context=context)
        await close_quietly(response)
        # Also where a scheduler's leadership moved: the cursor names the old node's journal.
        log.info("agent %s: cursor refused, reading from its time instead", spec.agent_id)
        since = Start(since=cursor_realtime(start.cursor))
        call = self.call(spec, since, stream=stream, skip_prev=skip_prev, limit=limit)
        response = await self.upstream.open(spec.reader_url, call)
        return Opened(response, guard=start.cursor, keep=keep, context=context)


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


async def range_batches(
    opened: Opened, agent: str, cover: Cover | None = None
) -> AsyncIterator[list[MergedEntry]]:
    """A 200 NDJSON range body as batches of entries (each stamped with `cover`, what the
    read covers); raises `UpstreamError`/`BadEntry`."""
    parser = LineParser(agent)
    guard = opened.guard
    newest: str | None = None
    async for chunk in opened.response.chunks():
        batch = parser.feed(chunk)
        if opened.context:
            newest = mark_late(batch, newest)
        if guard is not None:
            batch, guard = past_guard(batch, guard)
        batch = opened.kept(batch)
        if batch:
            if cover is not None:
                for entry in batch:
                    entry.cover = cover
            yield batch
    parser.close()


__all__ = [
    "SCHEDULER_SOURCE",
    "Keep",
    "MergePlan",
    "Opened",
    "Requester",
    "SourceOpener",
    "SourceSpec",
    "Start",
    "close_quietly",
    "names_any",
    "past_guard",
    "range_batches",
    "refusal",
    "upstream_query",
]
