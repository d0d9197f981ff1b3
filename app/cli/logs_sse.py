"""A client's server-sent events parser, incremental over the bytes as they arrive
(https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation).

Only whole events come out, each with the last event id as of its dispatch: an event cut off
by a lost connection never reaches the caller, so resuming with `Last-Event-ID` set to the
last dispatched id neither loses nor repeats one. Comments other than the keepalive (a merged
read's "agent … unavailable") are kept in `comments` for the caller to show.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_EVENT_BYTES = 16 * 1024 * 1024  # far above a journal entry (journald caps one at 768 MiB,
# but the node reader's lines are task lines and unit messages)
_LINE_END = re.compile(rb"\r\n|\r|\n")
KEEPALIVE = "ping"


class SseError(ValueError):
    pass


@dataclass(frozen=True)
class Event:
    data: bytes
    id: str | None  # the last event id when this event was dispatched
    type: str = "message"  # the `event` field (the gateway's last one: `access-ended`)


class SseParser:
    def __init__(self, *, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self.last_id: str | None = None  # as of the last dispatched event
        self.comments: list[str] = []
        self._max = max_event_bytes
        self._buffer = bytearray()
        self._data: list[bytes] = []
        self._size = 0
        self._id: str | None = None  # the id buffer, committed at dispatch
        self._type = ""

    def feed(self, chunk: bytes) -> list[Event]:
        self._buffer += chunk
        events: list[Event] = []
        start = 0
        for end in _LINE_END.finditer(self._buffer):
            if end.group() == b"\r" and end.end() == len(self._buffer):
                break  # maybe the first half of a CRLF: wait for the next byte
            event = self._line(bytes(self._buffer[start : end.start()]))
            if event is not None:
                events.append(event)
            start = end.end()
        del self._buffer[:start]
        if len(self._buffer) + self._size > self._max:
            raise SseError(f"an event of more than {self._max} bytes")
        return events

    def _line(self, line: bytes) -> Event | None:
        if not line:
            return self._dispatch()
        if line.startswith(b":"):
            comment = line[1:].decode("utf-8", "replace").strip()
            if comment and comment != KEEPALIVE:
                self.comments.append(comment)
            return None
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            self._data.append(value)
            self._size += len(value) + 1
        elif name == b"id" and b"\0" not in value:
            self._id = value.decode("utf-8", "replace")
        elif name == b"event":
            self._type = value.decode("utf-8", "replace")
        return None  # `retry` does not concern a log reader

    def _dispatch(self) -> Event | None:
        self.last_id = self._id
        data, self._data, self._size = b"\n".join(self._data), [], 0
        kind, self._type = self._type or "message", ""
        if not data:
            return None
        return Event(data, self.last_id, kind)
