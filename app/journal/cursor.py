"""Journald cursors: validation (so bad input is a 400, not a libsystemd error) and order.

A cursor is `s=<seqnum id>;i=<seqnum>;b=<boot id>;m=<monotonic>;t=<realtime>;x=<xor hash>`
(sd_journal_get_cursor(3)); dcos-log accepted exactly these six fields in this order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from app.core.errors import BadRequest

MAX_CURSOR_LENGTH = 256

_CURSOR = re.compile(
    r"^s=(?P<s>[0-9a-f]{1,32});i=(?P<i>[0-9a-f]{1,16});b=(?P<b>[0-9a-f]{1,32});"
    r"m=(?P<m>[0-9a-f]{1,16});t=(?P<t>[0-9a-f]{1,16});x=(?P<x>[0-9a-f]{1,16})$"
)


@dataclass(frozen=True, slots=True, order=True)
class Seqnum:
    """Where an entry sits in one journal: comparable within the same seqnum id."""

    seqnum_id: str
    seqnum: int
    realtime: int

    def after(self, other: Seqnum) -> bool:
        if self.seqnum_id == other.seqnum_id:
            return self.seqnum > other.seqnum
        return self.realtime > other.realtime


def parse_cursor(raw: str, *, parameter: str = "cursor", unescape: bool = True) -> str:
    """Return a well-formed cursor or raise a 400 naming `parameter`.

    dcos-log URL-unescapes the (already decoded) value a second time; clients and the
    gateway rely on that, so we do it too.
    """
    value = unquote(raw) if unescape else raw
    if len(value) > MAX_CURSOR_LENGTH or not _CURSOR.match(value):
        raise BadRequest(
            f"Incorrect cursor string in parameter `{parameter}`: expected "
            "s=…;i=…;b=…;m=…;t=…;x=… (a journald cursor)",
            parameter=parameter,
        )
    return value


def seqnum_of(cursor: str) -> Seqnum:
    m = _CURSOR.match(cursor)
    if m is None:
        raise ValueError("not a journald cursor")
    return Seqnum(m["s"], int(m["i"], 16), int(m["t"], 16))
