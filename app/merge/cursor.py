"""The composite cursor of a merged stream: where every source (agent journal) stands, and
which of the agent's containers that place covers.

    m2.<base64url(JSON {"o": <origin µs or null>,
                        "a": {<agent id>: <journald cursor>},
                        "c": {<agent id>: <container digests>},
                        "d": {<agent id>: [[<from cursor or null>, <to cursor>, <digests>], …]}})>

* Opaque to clients; the prefix versions the format. `m1.` cursors (no "c", no "d") are still
  accepted: see below.
* `o` (origin): realtime µs of the stream's start point, or null for "each journal's head"
  (a plain `/stream/` replays the whole journal, as dcos-log's v1 stream does). An agent the
  cursor does not name — one added after the cursor was made — is read from `since=origin`,
  so its entries since the stream started are delivered, none lost and none repeated (it
  delivered nothing before).
* `a`: the last entry delivered from each agent. It may name agents that are gone (kept, so
  that a returning agent resumes exactly) and may lack new ones (see `o`).
* `c` (coverage): the containers whose entries up to the agent's place have all been
  delivered, as digests (8 base64url characters each: the first 48 bits of the SHA-256 of
  the container id, sorted and concatenated); at most `MAX_MEMBERS` per agent, past which
  the agent's coverage is left out (unknown, as in `m1`) to keep the cursor small. Digests,
  not ids: the cursor never names a container, and a resume only ever reads containers the
  caller may read now (the digests merely sort those into covered and not covered). A
  container of the agent the caller may read whose digest is not here joined after the place
  was fixed: its entries from the origin up to the place are owed.
* `d` (debts): entries owed behind the place, for containers that joined an agent already in
  the stream while their catch-up was under way: the containers' entries after `from`
  (null: from the origin) up to and including `to` (and never past the agent's place) have
  not been delivered yet. A debt's containers count as owed whatever `c` says. Debts live
  only while a catch-up is under way.

An `m1.` cursor says nothing about coverage: it is taken to cover every container of the
agent the caller may read at the resume (what `m1` resumes always did). A task that started
on such an agent shortly before the `m1` cursor was made may thus miss its lines from before
the agent's place; no line is ever repeated.

Everything a client sends back is validated here; a malformed value is a 400 naming the
parameter it came in (`cursor` or `Last-Event-ID`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import orjson

from app.core.errors import BadRequest
from app.journal.cursor import parse_cursor, seqnum_of

PREFIX = "m2."
PREFIXES = ("m1.", PREFIX)
MAX_ENCODED = 64 * 1024  # well above 1,000 agents' cursors; far below any header limit
MAX_AGENTS = 4096
# Per agent: past this many containers the coverage is left out (taken as "every container
# readable at the resume", as for `m1`), which bounds the cursor at ~11 bytes per container.
MAX_MEMBERS = 256
AGENT_ID = re.compile(r"[0-9a-zA-Z-]{1,256}")  # as the gateway's agent routes take them
DIGEST_LEN = 8
DIGESTS = re.compile(r"(?:[0-9a-zA-Z_-]{8})*")
UINT64_MAX = 2**64 - 1

_debt_ids = itertools.count(1)


def digest(container: str) -> str:
    """A container id's digest in the cursor: 48 bits of its SHA-256, base64url."""
    raw = hashlib.sha256(container.encode("utf-8", "surrogateescape")).digest()[:6]
    return base64.urlsafe_b64encode(raw).decode("ascii")


def digests(containers: Iterable[str]) -> frozenset[str]:
    return frozenset(digest(c) for c in containers)


def pack(members: Iterable[str]) -> str:
    return "".join(sorted(members))


def unpack(packed: str) -> frozenset[str]:
    return frozenset(packed[i : i + DIGEST_LEN] for i in range(0, len(packed), DIGEST_LEN))


@dataclass(frozen=True, slots=True)
class Debt:
    """Entries owed behind an agent's place: those of the containers with digests `members`
    after `start` (None: from the origin) up to and including `end`. `id` tells debts apart
    within one gateway process (it is not part of the cursor)."""

    start: str | None
    end: str
    members: frozenset[str]
    id: int = field(default_factory=lambda: next(_debt_ids))

    def encoded(self) -> list[str | None]:
        return [self.start, self.end, pack(self.members)]


@dataclass(frozen=True, slots=True)
class AgentState:
    """Where one agent stands: its place, the containers it covers (None: unknown, as in an
    `m1` cursor — taken as all of them), and what is owed behind it."""

    cursor: str
    members: frozenset[str] | None
    debts: tuple[Debt, ...] = ()


@dataclass(frozen=True, slots=True)
class CompositeCursor:
    origin: int | None
    positions: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    members: Mapping[str, frozenset[str]] = field(default_factory=lambda: MappingProxyType({}))
    debts: Mapping[str, tuple[Debt, ...]] = field(default_factory=lambda: MappingProxyType({}))

    def state(self, agent: str) -> AgentState | None:
        position = self.positions.get(agent)
        if position is None:
            return None
        return AgentState(position, self.members.get(agent), self.debts.get(agent, ()))

    def states(self) -> dict[str, AgentState]:
        return {agent: state for agent in self.positions if (state := self.state(agent))}


def encode_cursor(
    origin: int | None,
    positions: Mapping[str, str],
    members: Mapping[str, str] | None = None,
    debts: Mapping[str, Sequence[list[str | None]]] | None = None,
) -> str:
    """`members`: packed digests by agent; `debts`: `Debt.encoded()` lists by agent."""
    body = orjson.dumps({"o": origin, "a": positions, "c": members or {}, "d": debts or {}})
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
    version = raw[:3]
    if version not in PREFIXES:
        raise _bad(parameter, f"it must start with `{PREFIX}`")
    text = raw[3:]
    try:
        body = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        data = orjson.loads(body)
    except (binascii.Error, ValueError):
        raise _bad(parameter, "not base64url-encoded JSON") from None
    keys = {"o", "a"} if version == "m1." else {"o", "a", "c", "d"}
    if not isinstance(data, dict) or set(data) != keys:
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
        if not _journal_cursor(cursor):
            raise _bad(parameter, f"the journal cursor of agent `{agent}` is malformed")
    if version == "m1.":
        return CompositeCursor(origin, MappingProxyType(dict(positions)))
    members, debts = data["c"], data["d"]
    if not isinstance(members, dict) or not set(members) <= set(positions):
        raise _bad(parameter, "unexpected coverage")
    for agent, packed in members.items():
        if (
            not isinstance(packed, str)
            or len(packed) > MAX_MEMBERS * DIGEST_LEN
            or not DIGESTS.fullmatch(packed)
        ):
            raise _bad(parameter, f"the coverage of agent `{agent}` is malformed")
    if not isinstance(debts, dict) or not set(debts) <= set(positions):
        raise _bad(parameter, "unexpected debts")
    owed = {agent: _debts(parameter, agent, listed) for agent, listed in debts.items()}
    return CompositeCursor(
        origin,
        MappingProxyType(dict(positions)),
        MappingProxyType({agent: unpack(packed) for agent, packed in members.items()}),
        MappingProxyType({agent: listed for agent, listed in owed.items() if listed}),
    )


def _debts(parameter: str, agent: str, listed: object) -> tuple[Debt, ...]:
    if not isinstance(listed, list):  # how many: bounded by MAX_ENCODED
        raise _bad(parameter, f"the debts of agent `{agent}` are malformed")
    out = []
    for item in listed:
        if (
            not isinstance(item, list)
            or len(item) != 3
            or not (item[0] is None or _journal_cursor(item[0]))
            or not _journal_cursor(item[1])
            or not isinstance(item[2], str)
            or not item[2]
            or len(item[2]) > MAX_MEMBERS * DIGEST_LEN
            or not DIGESTS.fullmatch(item[2])
        ):
            raise _bad(parameter, f"the debts of agent `{agent}` are malformed")
        out.append(Debt(item[0], item[1], unpack(item[2])))
    return tuple(out)


def _journal_cursor(value: object) -> bool:
    if not isinstance(value, str):
        return False
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
    "MAX_MEMBERS",
    "PREFIX",
    "AgentState",
    "CompositeCursor",
    "Debt",
    "after",
    "cursor_realtime",
    "decode_cursor",
    "digest",
    "digests",
    "encode_cursor",
    "pack",
    "unpack",
]
