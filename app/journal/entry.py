"""One journal entry as read from libsystemd, with its encodings computed at most once.

Followers of the shared live tail receive the same `Entry` object, so a line fanned out to
a thousand SSE clients is serialised once.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from app.journal.cursor import Seqnum, seqnum_of

FieldValue = str | list[int]

# Go's encoding/json (dcos-log) escapes these inside strings; orjson does not.
_GO_ESCAPES = (
    (b"<", b"\\u003c"),
    (b">", b"\\u003e"),
    (b"&", b"\\u0026"),
    ("\u2028".encode(), b"\\u2028"),
    ("\u2029".encode(), b"\\u2029"),
)


def decode_value(raw: bytes) -> FieldValue:
    """UTF-8 text as a string; anything else as a list of byte values.

    The list form is journalctl's (`-o json`) lossless encoding of binary data: dcos-log
    replaced invalid bytes with U+FFFD, which alters the line.
    """
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return list(raw)


def go_json(obj: Any) -> bytes:
    data = orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)
    for plain, escaped in _GO_ESCAPES:
        if plain in data:
            data = data.replace(plain, escaped)
    return data


class Entry:
    __slots__ = ("_json", "_seqnum", "cursor", "fields", "message", "monotonic", "realtime")

    def __init__(
        self,
        fields: dict[str, FieldValue],
        message: bytes | None,
        cursor: str,
        realtime: int,
        monotonic: int,
    ) -> None:
        self.fields = fields
        self.message = message
        self.cursor = cursor
        self.realtime = realtime
        self.monotonic = monotonic
        self._json: bytes | None = None
        self._seqnum: Seqnum | None = None

    @classmethod
    def from_raw(
        cls, raw: Mapping[str, bytes | list[bytes]], cursor: str, realtime: int, monotonic: int
    ) -> Entry:
        fields: dict[str, FieldValue] = {}
        message: bytes | None = None
        for key, value in raw.items():
            if isinstance(value, list):
                # A field repeated in one entry: the last value wins, as in dcos-log's map.
                value = value[-1]
            fields[key] = decode_value(value)
            if key == "MESSAGE":
                message = value
        return cls(fields, message, cursor, realtime, monotonic)

    @property
    def seqnum(self) -> Seqnum:
        if self._seqnum is None:
            self._seqnum = seqnum_of(self.cursor)
        return self._seqnum

    def json(self) -> bytes:
        """The dcos-log JSON object, without a trailing newline."""
        if self._json is None:
            # Go marshals the struct in declaration order and the fields map sorted.
            self._json = b"".join(
                (
                    b'{"fields":',
                    go_json(self.fields),
                    b',"cursor":',
                    go_json(self.cursor),
                    b',"monotonic_timestamp":%d,"realtime_timestamp":%d}'
                    % (self.monotonic, self.realtime),
                )
            )
        return self._json

    def field_bytes(self, name: str) -> bytes | None:
        value = self.fields.get(name)
        if value is None:
            return None
        return value.encode() if isinstance(value, str) else bytes(value)
