"""Entries to bytes, in dcos-log's three formats (reference §1.4), and the two formats of
dcos-log's v2 task file reader (reference §2.3) over a task's journal lines."""

from __future__ import annotations

import enum
import time
from typing import Protocol

import orjson

from app.journal.entry import Entry, decode_value, go_escape, json_lines

TEXT = "text/plain"
JSON = "application/json"
SSE = "text/event-stream"

SSE_PING = b": ping\n\n"


class NativeFormat(enum.IntEnum):
    """What app/journal/_fast.c writes, each the same bytes as one of the encoders here."""

    COUNT = 0  # nothing: entries are only counted
    JSON = 1  # JsonEncoder
    TEXT = 2  # TextEncoder
    SSE = 3  # SseEncoder(with_id=False)
    LINES = 4  # LineEncoder


class Encoder(Protocol):
    @property
    def media_type(self) -> str: ...

    def encode(self, entries: list[Entry]) -> bytes: ...

    def heartbeat(self) -> bytes | None: ...


class _LocalTime:
    """`YYYY-MM-DD HH:MM:SS` in the server's local zone, cached per second."""

    __slots__ = ("_last", "_text")

    def __init__(self) -> None:
        self._last = -1
        self._text = b""

    def __call__(self, realtime_usec: int) -> bytes:
        second = realtime_usec // 1_000_000
        if second != self._last:
            self._last = second
            self._text = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second)).encode()
        return self._text


class TextEncoder:
    """`<date>: MESSAGE\\n`; entries without MESSAGE produce no bytes, as in dcos-log.

    MESSAGE is written as the journal holds it, binary included.
    """

    media_type = TEXT

    def __init__(self) -> None:
        self._clock = _LocalTime()

    def encode(self, entries: list[Entry]) -> bytes:
        clock = self._clock
        return b"".join(
            clock(e.realtime) + b": " + e.message + b"\n" for e in entries if e.message is not None
        )

    def heartbeat(self) -> bytes | None:
        return None


class JsonEncoder:
    """NDJSON: one dcos-log entry object per line."""

    media_type = JSON

    def encode(self, entries: list[Entry]) -> bytes:
        return json_lines(entries)

    def heartbeat(self) -> bytes | None:
        return None


class SseEncoder:
    """`id: <cursor>` on streams only (dcos-log ties the id to follow mode)."""

    media_type = SSE

    def __init__(self, *, with_id: bool) -> None:
        self.with_id = with_id

    def encode(self, entries: list[Entry]) -> bytes:
        if self.with_id:
            # The id differs per entry, so it is written here; the JSON is shared.
            return go_escape(
                b"".join(
                    [
                        b"id: %s\ndata: %b\n\n" % (e.cursor.encode(), e.json_unescaped())
                        for e in entries
                    ]
                )
            )
        return json_lines(entries, prefix=b"data: ", suffix=b"\n\n")

    def heartbeat(self) -> bytes | None:
        return SSE_PING


class LineEncoder:
    """`MESSAGE\\n`: a task's output as its sandbox file held it, the bytes as stored.

    Entries without MESSAGE produce no bytes, as in `TextEncoder`.
    """

    media_type = TEXT

    def encode(self, entries: list[Entry]) -> bytes:
        lines = [m for e in entries if (m := e.message) is not None]
        return b"\n".join(lines) + b"\n" if lines else b""

    def heartbeat(self) -> bytes | None:
        return None


# dcos-log marshalled a Go map: keys sorted.
_FILE_EVENT = (
    b'id: %s\ndata: {"fields":{"AGENT_ID":%b,"CONTAINER_ID":%b,"EXECUTOR_ID":%b,'
    b'"FILE":%b,"FRAMEWORK_ID":%b,"MESSAGE":%b}}\n\n'
)


class FileEventEncoder:
    """dcos-log's task file events, each with `id: <journald cursor>` where dcos-log put a
    byte offset, so `Last-Event-ID` resumes at the exact entry.

    The ids are the entry's own (AGENT_ID is only known there; "" when absent). A value that
    is not UTF-8 is a list of byte values, as in the v1 JSON. Entries without MESSAGE
    produce no event.
    """

    media_type = SSE

    def __init__(self, *, file: str) -> None:
        self._file = orjson.dumps(file)

    def encode(self, entries: list[Entry]) -> bytes:
        out: list[bytes] = []
        append = out.append
        file = self._file
        for e in entries:
            message = e.message
            if message is None:
                continue
            append(
                _FILE_EVENT
                % (
                    e.cursor.encode(),
                    _json_field(e, "AGENT_ID"),
                    _json_field(e, "CONTAINER_ID"),
                    _json_field(e, "EXECUTOR_ID"),
                    file,
                    _json_field(e, "FRAMEWORK_ID"),
                    orjson.dumps(decode_value(message)),
                )
            )
        return go_escape(b"".join(out))

    def heartbeat(self) -> bytes | None:
        return SSE_PING


def _json_field(entry: Entry, name: str) -> bytes:
    raw = entry.field_bytes(name)
    return b'""' if raw is None else orjson.dumps(decode_value(raw))


def native_format(encoder: Encoder) -> NativeFormat | None:
    """The format the C reader writes for `encoder` (range reads), or None: Python's."""
    if type(encoder) is JsonEncoder:
        return NativeFormat.JSON
    if type(encoder) is TextEncoder:
        return NativeFormat.TEXT
    if type(encoder) is LineEncoder:
        return NativeFormat.LINES
    if type(encoder) is SseEncoder and not encoder.with_id:
        return NativeFormat.SSE
    return None


def negotiate(accept: str | None) -> str:
    """Pick text, JSON or SSE from an Accept header.

    dcos-log compared the whole header with exact strings; we parse the list and its
    parameters (`application/json; charset=utf-8`, `text/event-stream, */*`), honour q=0,
    and fall back to text as dcos-log did.
    """
    if not accept:
        return TEXT
    best: tuple[float, int, str] | None = None
    for position, item in enumerate(accept.split(",")):
        parts = [p.strip() for p in item.split(";")]
        media = parts[0].lower()
        q = 1.0
        for param in parts[1:]:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media not in (JSON, SSE, TEXT) or q <= 0:
            continue
        candidate = (q, -position, media)
        if best is None or candidate > best:
            best = candidate
    return best[2] if best else TEXT


def encoder_for(media_type: str, *, stream: bool) -> Encoder:
    if media_type == JSON:
        return JsonEncoder()
    if media_type == SSE:
        return SseEncoder(with_id=stream)
    return TextEncoder()


def file_encoder_for(media_type: str, *, file: str) -> Encoder:
    """A task file read from the journal: lines, the v1 JSON entries, or file events."""
    if media_type == JSON:
        return JsonEncoder()
    if media_type == SSE:
        return FileEventEncoder(file=file)
    return LineEncoder()
