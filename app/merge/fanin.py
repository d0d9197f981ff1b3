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
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from urllib.parse import quote

import anyio

from app.core.credential import TokenProvider
from app.journal.encoders import JSON, SSE
from app.merge.cursor import after, cursor_realtime
from app.merge.entry import Cover, LineParser, MergedEntry
from app.proxy.call import Upstream, UpstreamCall, UpstreamResponse
from app.proxy.errors import UpstreamError, UpstreamTimeout

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
    grep: tuple[str, ...] = ()  # the client's patterns: every node reader searches its part
    # How long a range waits for an agent's answer before leaving it out (a frozen reader
    # would otherwise hold the whole read for the upstream read timeout).
    answer_timeout: float | None = None


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
    params += [("grep", pattern) for pattern in requester.grep]
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


async def range_batches(
    opened: Opened, agent: str, cover: Cover | None = None
) -> AsyncIterator[list[MergedEntry]]:
    """A 200 NDJSON range body as batches of entries (each stamped with `cover`, what the
    read covers); raises `UpstreamError`/`BadEntry`."""
    parser = LineParser(agent)
    guard = opened.guard
    async for chunk in opened.response.chunks():
        batch = parser.feed(chunk)
        if guard is not None:
            batch, guard = past_guard(batch, guard)
        if batch:
            if cover is not None:
                for entry in batch:
                    entry.cover = cover
            yield batch
    parser.close()


__all__ = [
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
