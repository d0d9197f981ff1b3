"""Entries of a merged read: parsed once from a node reader's body, re-encoded for the client.

The gateway reads each agent in a format that carries cursors and timestamps (NDJSON for
ranges, SSE for streams) and needs only two things from an entry to merge it: its journald
cursor and its realtime timestamp, which is the cursor's `t=` field. Both are sliced out of
the bytes without parsing the JSON; the JSON object itself is kept as the node wrote it and
forwarded unchanged in NDJSON and SSE. Only text output parses it (for MESSAGE), and an
entry without an `AGENT_ID` field gets one, so that every merged entry names its agent.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from app.journal.encoders import JSON, SSE, TEXT, TextEncoder
from app.journal.entry import Entry, go_json
from app.proxy.merge_cursor import cursor_realtime, encode_cursor

_CURSOR_KEY = b',"cursor":"'
_AGENT_KEY = b'"AGENT_ID":'
_ID = b"id: "
_DATA = b"\ndata: "


class MergedEntry:
    """One entry from one agent. `ts` orders the merge; `cursor` resumes the agent, unless
    the entry is a `catchup` one (read behind the agent's position: it must not move it)."""

    __slots__ = ("agent", "arrived", "catchup", "cursor", "data", "ts")

    def __init__(self, agent: str, cursor: str, data: bytes, arrived: float = 0.0) -> None:
        self.agent = agent
        self.cursor = cursor
        try:
            self.ts = cursor_realtime(cursor)
        except (IndexError, ValueError):
            raise BadEntry(f"malformed cursor {cursor[:80]!r}") from None
        self.data = data if _AGENT_KEY in data else _with_agent(data, agent)
        self.arrived = arrived
        self.catchup = False

    def __repr__(self) -> str:
        return f"MergedEntry({self.agent!r}, ts={self.ts})"


class BadEntry(ValueError):
    """A node reader's body is not what its format promised."""


def _with_agent(data: bytes, agent: str) -> bytes:
    # Rare (the shipper writes AGENT_ID; other writers may not): parse, add, re-encode as the
    # node does (sorted keys, Go's escapes).
    try:
        obj = orjson.loads(data)
        obj["fields"]["AGENT_ID"] = agent
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise BadEntry(f"entry without fields: {exc}") from None
    out: bytes = go_json(obj)
    return out


def cursor_of_line(line: bytes) -> str:
    """The top-level `cursor` of a node reader's NDJSON entry. It follows the `fields` object,
    and a `"` inside a string is always escaped, so the last `,"cursor":"` is the key."""
    start = line.rfind(_CURSOR_KEY)
    if start < 0:
        raise BadEntry("entry without a cursor")
    start += len(_CURSOR_KEY)
    end = line.find(b'"', start)
    if end < 0:
        raise BadEntry("entry with an unterminated cursor")
    return line[start:end].decode("ascii", "replace")


class LineParser:
    """NDJSON chunks → entries of one agent (a partial last line waits for the next chunk)."""

    def __init__(self, agent: str) -> None:
        self.agent = agent
        self._pending = b""

    def feed(self, chunk: bytes, arrived: float = 0.0) -> list[MergedEntry]:
        data = self._pending + chunk if self._pending else chunk
        lines = data.split(b"\n")
        self._pending = lines.pop()
        agent = self.agent
        return [MergedEntry(agent, cursor_of_line(line), line, arrived) for line in lines if line]

    def close(self) -> None:
        if self._pending.strip():
            raise BadEntry("body ended inside an entry")


class EventParser:
    """A node reader's event stream → entries of one agent: `id: <cursor>` + `data: <JSON>`
    per event; comments (`: ping`) and anything without both fields are skipped. A partial
    last event waits for the next chunk, so a broken connection loses no whole event."""

    def __init__(self, agent: str) -> None:
        self.agent = agent
        self._pending = b""

    def feed(self, chunk: bytes, arrived: float = 0.0) -> list[MergedEntry]:
        data = self._pending + chunk if self._pending else chunk
        if b"\r" in data:  # the node writes LF only; any other server gets normalised
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        events = data.split(b"\n\n")
        self._pending = events.pop()
        out: list[MergedEntry] = []
        agent = self.agent
        for event in events:
            if event.startswith(_ID):
                cut = event.find(_DATA)
                if cut > 0:
                    cursor = event[4:cut].decode("ascii", "replace")
                    out.append(MergedEntry(agent, cursor, event[cut + 7 :], arrived))
                    continue
            entry = self._slow(event, arrived)
            if entry is not None:
                out.append(entry)
        return out

    def _slow(self, event: bytes, arrived: float) -> MergedEntry | None:
        cursor: str | None = None
        data: list[bytes] = []
        for line in event.split(b"\n"):
            name, _, value = line.partition(b":")
            value = value[1:] if value.startswith(b" ") else value
            if name == b"id":
                cursor = value.decode("ascii", "replace")
            elif name == b"data":
                data.append(value)
        if cursor is None or not data:
            return None
        return MergedEntry(self.agent, cursor, b"\n".join(data), arrived)

    def discard_partial(self) -> None:
        self._pending = b""


class Positions:
    """Where the client stands: the last delivered entry of every agent, and the origin."""

    def __init__(self, origin: int | None, positions: Mapping[str, str] | None = None) -> None:
        self.origin = origin
        self.cursors: dict[str, str] = dict(positions or {})

    def advance(self, entry: MergedEntry) -> None:
        if not entry.catchup:
            self.cursors[entry.agent] = entry.cursor

    def encoded(self) -> str:
        return encode_cursor(self.origin, self.cursors)


class MergedEncoder:
    """Text (the node's v1 text lines), NDJSON (the node's entries), or SSE with the
    composite cursor as every event's `id` (on ranges too: a client can follow on from a
    range's last id). Advances `positions` by every entry it encodes."""

    def __init__(self, media_type: str) -> None:
        self.media_type = media_type if media_type in (JSON, SSE) else TEXT
        self._text = TextEncoder()

    def encode(self, entries: list[MergedEntry], positions: Positions) -> bytes:
        if self.media_type == SSE:
            out = []
            for e in entries:
                positions.advance(e)
                out.append(b"id: %s\ndata: %b\n\n" % (positions.encoded().encode(), e.data))
            return b"".join(out)
        for e in entries:
            positions.advance(e)
        if self.media_type == JSON:
            return b"".join([e.data + b"\n" for e in entries])
        return self._text.encode([_text_entry(e) for e in entries])

    def heartbeat(self) -> bytes | None:
        return b": ping\n\n" if self.media_type == SSE else None


def _text_entry(entry: MergedEntry) -> Entry:
    message = orjson.loads(entry.data)["fields"].get("MESSAGE")
    raw: dict[str, bytes] = {}
    if isinstance(message, str):
        raw["MESSAGE"] = message.encode()
    elif isinstance(message, list):
        raw["MESSAGE"] = bytes(message)  # the node's lossless form of binary data
    return Entry(raw, entry.cursor)


__all__ = [
    "BadEntry",
    "EventParser",
    "LineParser",
    "MergedEncoder",
    "MergedEntry",
    "Positions",
    "cursor_of_line",
]
