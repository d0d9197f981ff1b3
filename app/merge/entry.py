"""Entries of a merged read: parsed once from a node reader's body, re-encoded for the client.

The gateway reads each agent in a format that carries cursors and timestamps (NDJSON for
ranges, SSE for streams) and needs only two things from an entry to merge it: its journald
cursor and its realtime timestamp, which is the cursor's `t=` field. Both are sliced out of
the bytes without parsing the JSON; the JSON object itself is kept as the node wrote it and
forwarded unchanged in NDJSON and SSE. Only text output parses it (for MESSAGE), and an
entry without an `AGENT_ID` field gets one, so that every merged entry names its agent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

import orjson

from app.journal.encoders import JSON, SSE, TEXT, TextEncoder
from app.journal.entry import Entry, go_json
from app.merge.cursor import (
    MAX_MEMBERS,
    AgentState,
    CompositeCursor,
    Debt,
    after,
    cursor_realtime,
    digests,
    encode_cursor,
    pack,
    unpack,
)
from app.proxy.sse import MAX_EVENT_BYTES, SseError, SseParser

_CURSOR_KEY = b',"cursor":"'
# How a node reader marks a search's match and context (app/journal/search.py `mark`); a `"`
# inside a value is escaped, so only the marks themselves contain these bytes.
_MATCH = b',"match":true'
_CONTEXT = b',"match":false'
_GAP = b',"gap":true'
_AGENT_KEY = b'"AGENT_ID":'
# The source key of a scheduler's lines (`include=scheduler`): no agent's, so they get no
# AGENT_ID. A Mesos agent id is `<master id>-S<n>`, never this.
SCHEDULER_SOURCE = "scheduler"


class Cover:
    """The containers a read of an agent covers (their digests, and those packed)."""

    __slots__ = ("members", "packed")

    def __init__(self, containers: Iterable[str]) -> None:
        self.members = digests(containers)
        # None: too many to carry in a cursor (the coverage is then unknown: MAX_MEMBERS).
        self.packed = pack(self.members) if len(self.members) <= MAX_MEMBERS else None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Cover) and other.members == self.members

    def __hash__(self) -> int:
        return hash(self.members)


class MergedEntry:
    """One entry from one agent. `ts` orders the merge; `cursor` resumes the agent, and
    `cover` (when known) says which containers the read that brought it covers — unless
    the entry pays off a `debt` (read behind the agent's position by a catch-up: it moves
    only that debt's progress, and the `settles` one, the last, pays it off)."""

    __slots__ = ("agent", "arrived", "cover", "cursor", "data", "debt", "late", "settles", "ts")

    def __init__(self, agent: str, cursor: str, data: bytes, arrived: float = 0.0) -> None:
        self.agent = agent
        self.cursor = cursor
        try:
            self.ts = cursor_realtime(cursor)
        except (IndexError, ValueError):
            raise BadEntry(f"malformed cursor {cursor[:80]!r}") from None
        if _AGENT_KEY in data or agent == SCHEDULER_SOURCE:
            self.data = data
        else:
            self.data = _with_agent(data, agent)
        self.arrived = arrived
        self.cover: Cover | None = None
        self.debt: Debt | None = None
        self.settles = False
        # A search's before-context, sent by its node reader just before its match, behind
        # entries already sent (`context=`): not a place to resume from.
        self.late = False

    @property
    def catchup(self) -> bool:
        return self.debt is not None

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
    """A node reader's event stream → entries of one agent, through the one SSE reader
    (`app.proxy.sse`): each event with its own `id: <cursor>` and `data: <JSON>` is an entry;
    comments (`: ping`) and events without both are skipped. A partial last event waits for
    the next chunk, so a broken connection loses no whole event; an event over
    `max_event_bytes` is a `BadEntry`."""

    def __init__(self, agent: str, *, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self.agent = agent
        self._sse = SseParser(max_event_bytes=max_event_bytes)

    def feed(self, chunk: bytes, arrived: float = 0.0) -> list[MergedEntry]:
        try:
            events = self._sse.feed(chunk)
        except SseError as exc:
            raise BadEntry(str(exc)) from None
        self._sse.comments.clear()  # a node reader's comments are keepalives
        agent = self.agent
        out = []
        for e in events:
            if e.named and e.id is not None:
                out.append(MergedEntry(agent, e.id, e.data, arrived))
            elif _CONTEXT in e.data:  # before-context: its cursor is in its data only
                entry = MergedEntry(agent, cursor_of_line(e.data), e.data, arrived)
                entry.late = True
                out.append(entry)
        return out

    def discard_partial(self) -> None:
        self._sse.discard_partial()


class Positions:
    """Where the client stands: the last delivered entry of every agent, which containers
    that place covers, what is owed behind it, and the origin (the composite cursor's
    parts, see `app.merge.cursor`). Advanced in delivery order by the encoder; debts
    are added as soon as they arise (a debt never reaches past the agent's place, so it is
    exact whenever it is recorded)."""

    def __init__(self, origin: int | None, positions: Mapping[str, str] | None = None) -> None:
        self.origin = origin
        self.cursors: dict[str, str] = dict(positions or {})
        self.members: dict[str, str] = {}  # agent -> packed digests; absent: unknown
        self.debts: dict[str, dict[int, Debt]] = {}
        self._settled: set[int] = set()
        self._debts_encoded: dict[str, list[list[str | None]]] = {}

    @classmethod
    def resumed(cls, cursor: CompositeCursor) -> Positions:
        positions = cls(cursor.origin, cursor.positions)
        positions.members = {agent: pack(m) for agent, m in cursor.members.items()}
        for agent, debts in cursor.debts.items():
            for debt in debts:
                positions.owe(agent, debt)
        return positions

    def advance(self, entry: MergedEntry) -> None:
        agent = entry.agent
        debt = entry.debt
        if entry.late and not entry.settles:
            return  # behind the agent's place: it moves nothing
        if debt is None:
            self.cursors[agent] = entry.cursor
            cover = entry.cover
            if cover is not None:
                if cover.packed is None:
                    self.members.pop(agent, None)
                else:
                    self.members[agent] = cover.packed
        elif entry.settles:
            self.settle(agent, debt)
        elif debt.id not in self._settled:
            self._set_debt(agent, replace(debt, start=entry.cursor))

    def begin(self, agent: str, cover: Cover) -> None:
        """A read of `agent` starts with `cover`: where the coverage was unknown (an `m1`
        cursor, a `skip_prev` start), it is what is read now."""
        if agent not in self.members and agent in self.cursors and cover.packed is not None:
            self.members[agent] = cover.packed

    def owe(self, agent: str, debt: Debt) -> None:
        """`debt` arose (a catch-up starts); one already known keeps its progress."""
        if debt.id not in self._settled and debt.id not in self.debts.get(agent, {}):
            self._set_debt(agent, debt)

    def settle(self, agent: str, debt: Debt) -> None:
        """`debt` is paid off: its containers are covered up to the agent's place."""
        self._settled.add(debt.id)
        owed = self.debts.get(agent)
        if owed is not None and owed.pop(debt.id, None) is not None:
            self._debts_changed(agent)
        known = self.members.get(agent)
        if known is not None:
            members = unpack(known) | debt.members
            if len(members) <= MAX_MEMBERS:
                self.members[agent] = pack(members)
            else:
                del self.members[agent]

    def _set_debt(self, agent: str, debt: Debt) -> None:
        self.debts.setdefault(agent, {})[debt.id] = debt
        self._debts_changed(agent)

    def _debts_changed(self, agent: str) -> None:
        owed = self.debts.get(agent)
        if owed:
            self._debts_encoded[agent] = [d.encoded() for d in owed.values()]
        else:
            self.debts.pop(agent, None)
            self._debts_encoded.pop(agent, None)

    def state(self, agent: str) -> AgentState | None:
        cursor = self.cursors.get(agent)
        if cursor is None:
            return None
        members = self.members.get(agent)
        owed = tuple(self.debts.get(agent, {}).values())
        return AgentState(cursor, None if members is None else unpack(members), owed)

    def encoded(self) -> str:
        debts = self._debts_encoded
        if not debts.keys() <= self.cursors.keys():
            # Owed before the agent's first entry was delivered: on a resume that agent is
            # read from the origin anyway.
            debts = {agent: d for agent, d in debts.items() if agent in self.cursors}
        return encode_cursor(self.origin, self.cursors, self.members, debts)


class MergedEncoder:
    """Text (the node's v1 text lines), NDJSON (the node's entries), or SSE with the
    composite cursor as every event's `id` (on ranges too: a client can follow on from a
    range's last id). Advances `positions` by every entry it encodes."""

    def __init__(self, media_type: str, *, groups: bool = False) -> None:
        self.media_type = media_type if media_type in (JSON, SSE) else TEXT
        self._text = TextEncoder()
        self._groups = groups  # a search with context: text has `--` between groups

    def encode(self, entries: list[MergedEntry], positions: Positions) -> bytes:
        if self.media_type == SSE:
            out = []
            for e in entries:
                positions.advance(e)
                if e.late:  # no id: the client's Last-Event-ID stays on its place
                    out.append(b"data: %b\n\n" % e.data)
                    continue
                out.append(b"id: %s\ndata: %b\n\n" % (positions.encoded().encode(), e.data))
            return b"".join(out)
        for e in entries:
            positions.advance(e)
        if self.media_type == JSON:
            return b"".join([e.data + b"\n" for e in entries])
        if self._groups:
            return b"".join(
                (b"--\n" if _GAP in e.data else b"") + self._text.encode([_text_entry(e)])
                for e in entries
            )
        return self._text.encode([_text_entry(e) for e in entries])

    def heartbeat(self) -> bytes | None:
        return b": ping\n\n" if self.media_type == SSE else None


def is_match(entry: MergedEntry) -> bool:
    """A search's match (with `context=`, the rest is context)."""
    return _MATCH in entry.data


def mark_late(entries: list[MergedEntry], last: str | None) -> str | None:
    """Marks as late the entries of one node reader's search range (NDJSON, which has no
    ids) that come behind one already read (`last`: the cursor of the newest so far, which
    is returned updated)."""
    for entry in entries:
        if last is not None and not after(entry.cursor, last):
            entry.late = True
        else:
            last = entry.cursor
    return last


def _text_entry(entry: MergedEntry) -> Entry:
    message = orjson.loads(entry.data)["fields"].get("MESSAGE")
    raw: dict[str, bytes] = {}
    if isinstance(message, str):
        raw["MESSAGE"] = message.encode()
    elif isinstance(message, list):
        raw["MESSAGE"] = bytes(message)  # the node's lossless form of binary data
    return Entry(raw, entry.cursor)


__all__ = [
    "SCHEDULER_SOURCE",
    "BadEntry",
    "Cover",
    "EventParser",
    "LineParser",
    "MergedEncoder",
    "MergedEntry",
    "Positions",
    "cursor_of_line",
    "is_match",
    "mark_late",
]
