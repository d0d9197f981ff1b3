"""The composite cursor of a merged stream: where every source (agent journal) stands.

A merged stream's SSE `id` must let a client resume every source exactly, so it holds one
journald cursor per agent (the last entry delivered from that agent) and the stream's
*origin*, the start point that sources without a position begin from:

    m1.<base64url(JSON {"o": <origin µs or null>, "a": {<agent id>: <journald cursor>}})>

* Opaque to clients; the `m1.` prefix versions the format.
* `o` (origin): realtime µs of the stream's start point, or null for "each journal's head"
  (a plain `/stream/` replays the whole journal, as dcos-log's v1 stream does). An agent the
  cursor does not name — one added after the cursor was made — is read from `since=origin`,
  so its entries since the stream started are delivered, none lost and none repeated (it
  delivered nothing before).
* `a` may name agents that are gone (kept, so that a returning agent resumes exactly) and
  may lack new ones (see `o`).

Everything a client sends back is validated here; a malformed value is a 400 naming the
parameter it came in (`cursor` or `Last-Event-ID`).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import orjson

from app.core.errors import BadRequest
from app.journal.cursor import parse_cursor, seqnum_of

PREFIX = "m1."
MAX_ENCODED = 64 * 1024  # well above 1,000 agents' cursors; far below any header limit
MAX_AGENTS = 4096
AGENT_ID = re.compile(r"[0-9a-zA-Z-]{1,256}")  # as the gateway's agent routes take them
UINT64_MAX = 2**64 - 1


@dataclass(frozen=True, slots=True)
class CompositeCursor:
    origin: int | None
    positions: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


def encode_cursor(origin: int | None, positions: Mapping[str, str]) -> str:
    body = orjson.dumps({"o": origin, "a": positions})
    return PREFIX + base64.urlsafe_b64encode(body).rstrip(b"=").decode("ascii")


def _bad(parameter: str, why: str) -> BadRequest:
    return BadRequest(
        f"Incorrect merged-stream cursor in `{parameter}`: {why} (use an SSE `id` of a merged "
        "role or app stream, unchanged)",
        parameter=parameter,
    )


def decode_cursor(raw: str, *, parameter: str = "cursor") -> CompositeCursor:
    """The cursor a client sent back, or a 400 naming `parameter`."""
    if len(raw) > MAX_ENCODED:
        raise _bad(parameter, "too long")
    if not raw.startswith(PREFIX):
        raise _bad(parameter, f"it must start with `{PREFIX}`")
    text = raw[len(PREFIX) :]
    try:
        body = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        data = orjson.loads(body)
    except (binascii.Error, ValueError):
        raise _bad(parameter, "not base64url-encoded JSON") from None
    if not isinstance(data, dict) or set(data) != {"o", "a"}:
        raise _bad(parameter, "unexpected structure")
    origin, positions = data["o"], data["a"]
    if origin is not None and (
        not isinstance(origin, int) or isinstance(origin, bool) or not 0 <= origin <= UINT64_MAX
    ):
        raise _bad(parameter, "the origin is not a timestamp")
    if not isinstance(positions, dict) or len(positions) > MAX_AGENTS:
        raise _bad(parameter, "unexpected positions")
    for agent, cursor in positions.items():
        if not AGENT_ID.fullmatch(agent):
            raise _bad(parameter, "an agent id is malformed")
        if not isinstance(cursor, str) or not _journal_cursor(cursor):
            raise _bad(parameter, f"the journal cursor of agent `{agent}` is malformed")
    return CompositeCursor(origin, MappingProxyType(dict(positions)))


def _journal_cursor(value: str) -> bool:
    try:
        parse_cursor(value, unescape=False)
    except BadRequest:
        return False
    return True


def cursor_realtime(cursor: str) -> int:
    """The `t=` field of a well-formed journald cursor: the entry's realtime µs, which is
    what the node reader reports as `realtime_timestamp` (`Entry.realtime` reads it there)."""
    return int(cursor.split(";", 5)[4][2:], 16)


def after(cursor: str, mark: str) -> bool:
    """Does the entry at `cursor` come after the one at `mark` in the same journal?"""
    return seqnum_of(cursor).after(seqnum_of(mark))


__all__ = [
    "PREFIX",
    "CompositeCursor",
    "after",
    "cursor_realtime",
    "decode_cursor",
    "encode_cursor",
]
