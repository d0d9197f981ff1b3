"""Fakes for the merge engine's unit tests: journald-shaped cursors and entries, and an
`Upstream` that serves scripted node reader answers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field

import orjson

from app.merge.entry import MergedEntry
from app.proxy.call import UpstreamCall, UpstreamResponse
from app.proxy.errors import UpstreamBroken, UpstreamUnreachable

SEQNUM_ID = "0f" * 16


def cursor(seq: int, ts: int, *, seqnum_id: str = SEQNUM_ID) -> str:
    return f"s={seqnum_id};i={seq:x};b={'ab' * 16};m={seq:x};t={ts:x};x={seq + 1:x}"


def entry_json(agent: str, seq: int, ts: int, message: str, **fields: str) -> bytes:
    """A node reader's NDJSON entry (without the newline)."""
    # The node's key order: fields (sorted), cursor, monotonic_timestamp, realtime_timestamp.
    all_fields = {"AGENT_ID": agent, "MESSAGE": message, **fields}
    return b'{"fields":%b,"cursor":"%s","monotonic_timestamp":%d,"realtime_timestamp":%d}' % (
        orjson.dumps(all_fields, option=orjson.OPT_SORT_KEYS),
        cursor(seq, ts).encode(),
        seq,
        ts,
    )


def entry(agent: str, seq: int, ts: int, arrived: float = 0.0) -> MergedEntry:
    return MergedEntry(
        agent, cursor(seq, ts), entry_json(agent, seq, ts, f"{agent} {seq}"), arrived
    )


def sse_event(agent: str, seq: int, ts: int) -> bytes:
    return b"id: %s\ndata: %b\n\n" % (
        cursor(seq, ts).encode(),
        entry_json(agent, seq, ts, f"{agent} {seq}"),
    )


async def _chunks(parts: Sequence[bytes | Exception], hold: bool) -> AsyncGenerator[bytes, None]:
    for part in parts:
        if isinstance(part, Exception):
            raise part
        yield part
    if hold:  # a follow that stays open, silent, until closed
        await asyncio.get_running_loop().create_future()


async def _noop() -> None:
    return None


def response(
    status: int,
    parts: Sequence[bytes | Exception],
    media_type: str = "text/event-stream",
    *,
    hold: bool = False,
) -> UpstreamResponse:
    headers = [(b"content-type", media_type.encode())]
    return UpstreamResponse(status, headers, _chunks(parts, hold), _noop)


Script = Callable[[UpstreamCall], UpstreamResponse]


@dataclass
class FakeUpstream:
    """Answers each `open` with the next scripted reply for that node (an exception raises
    it), from the queue `"<node> range"` for range reads when there is one; records every
    call."""

    replies: dict[str, list[UpstreamResponse | Exception]] = field(default_factory=dict)
    calls: list[tuple[str, UpstreamCall]] = field(default_factory=list)

    async def open(self, node_base_url: str, call: UpstreamCall) -> UpstreamResponse:
        self.calls.append((node_base_url, call))
        queue = self.replies.get(f"{call.node} range") if call.path == "/v1/range/" else None
        queue = queue if queue is not None else self.replies.get(call.node, [])
        if not queue:
            raise UpstreamUnreachable("cannot connect to the node's log reader", node=call.node)
        reply = queue.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply


BROKEN = UpstreamBroken("the node's log reader broke the connection", node="x")
