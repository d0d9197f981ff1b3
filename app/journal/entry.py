"""One journal entry as read from libsystemd, decoded lazily and encoded at most once.

Followers of the shared live tail receive the same `Entry` object, so a line fanned out to
a thousand SSE clients is serialised once. Reading is the node reader's hot path: the raw
field map from libsystemd is kept as is, timestamps come from the cursor (which libsystemd
builds from the same entry header), and JSON is produced without per-field Python work
whenever every value is plain UTF-8.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from app.journal.cursor import Seqnum, seqnum_of

FieldValue = str | list[int]
RawFields = Mapping[str, bytes | list[bytes]]

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


def _last(value: bytes | list[bytes]) -> bytes:
    # A field repeated in one entry: the last value wins, as in dcos-log's Go map.
    return value[-1] if isinstance(value, list) else value


def decode_fields(raw: RawFields) -> dict[str, FieldValue]:
    try:
        # The common case, and the fastest way to it (measured against join/split tricks).
        return {key: value.decode() for key, value in raw.items()}  # type: ignore[union-attr]
    except (UnicodeDecodeError, AttributeError):  # binary data, or a repeated field (list)
        return {key: decode_value(_last(value)) for key, value in raw.items()}


def go_escape(data: bytes) -> bytes:
    """Apply Go's extra string escapes to JSON text (safe on whole documents: these
    characters can only occur inside strings)."""
    for plain, escaped in _GO_ESCAPES:
        if plain in data:
            data = data.replace(plain, escaped)
    return data


def go_json(obj: Any) -> bytes:
    return go_escape(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS))


class Entry:
    __slots__ = ("_fields", "_json", "_json_unescaped", "_seqnum", "cursor", "raw")

    def __init__(self, raw: RawFields, cursor: str) -> None:
        self.raw = raw
        self.cursor = cursor
        self._fields: dict[str, FieldValue] | None = None
        self._json: bytes | None = None
        self._json_unescaped: bytes | None = None
        self._seqnum: Seqnum | None = None

    @property
    def fields(self) -> dict[str, FieldValue]:
        if self._fields is None:
            self._fields = decode_fields(self.raw)
        return self._fields

    @property
    def message(self) -> bytes | None:
        value = self.raw.get("MESSAGE")
        return None if value is None else _last(value)

    @property
    def searched_message(self) -> bytes | None:
        """The MESSAGE grep= matches: a repeated field's first value, the one libsystemd's
        sd_journal_get_data gives the scan (app/journal/_fast.c `messages()`)."""
        value = self.raw.get("MESSAGE")
        if value is None:
            return None
        return value[0] if isinstance(value, list) else value

    @property
    def realtime(self) -> int:
        return int(self.cursor.split(";", 5)[4][2:], 16)

    @property
    def monotonic(self) -> int:
        return int(self.cursor.split(";", 4)[3][2:], 16)

    @property
    def seqnum(self) -> Seqnum:
        if self._seqnum is None:
            self._seqnum = seqnum_of(self.cursor)
        return self._seqnum

    def field_bytes(self, name: str) -> bytes | None:
        value = self.raw.get(name)
        return None if value is None else _last(value)

    def json(self) -> bytes:
        """The dcos-log JSON object, without a trailing newline."""
        if self._json is None:
            self._json = go_escape(self.json_unescaped())
        return self._json

    def json_unescaped(self) -> bytes:
        """As `json()` but before Go's `<>&` escapes, for encoders that escape a whole batch."""
        if self._json_unescaped is None:
            self._json_unescaped = _json_object(self.fields, self.cursor)
        return self._json_unescaped


def _json_object(fields: dict[str, FieldValue], cursor: str) -> bytes:
    # Go marshals the struct in declaration order and the fields map sorted.
    _, _, _, mono, real, _ = cursor.split(";")
    return b'{"fields":%b,"cursor":"%s","monotonic_timestamp":%d,"realtime_timestamp":%d}' % (
        orjson.dumps(fields, option=orjson.OPT_SORT_KEYS),
        cursor.encode(),
        int(mono[2:], 16),
        int(real[2:], 16),
    )


def json_lines(entries: list[Entry], *, prefix: bytes = b"", suffix: bytes = b"\n") -> bytes:
    """The hot path of range reads: each entry's JSON between `prefix` and `suffix`, Go's
    escapes applied once to the whole batch. Entries fanned out by the live tail reuse the
    JSON they already carry; one-off range entries are encoded without being kept."""
    out: list[bytes] = []
    append = out.append
    for e in entries:
        data = e._json_unescaped
        if data is None:
            data = _json_object(e._fields or decode_fields(e.raw), e.cursor)
        append(prefix)
        append(data)
        append(suffix)
    return go_escape(b"".join(out))
