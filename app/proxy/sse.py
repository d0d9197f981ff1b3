"""Server-sent events, read incrementally as the bytes arrive: `SseFramer` finds the event
boundaries (what the relay forwards), `SseParser` parses the whole events it yields (what a
client reads). Each takes its size cap as a parameter.

The boundaries make a resumed stream repeat nothing. The relay forwards only complete events
(up to a blank line) and remembers the `id:` of the last one; when the node goes away
mid-event, the half event is dropped and the stream resumes with `Last-Event-ID: <that id>`,
so the node sends that event again, whole
(https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation).
An event larger than `MAX_EVENT_BYTES` is passed through as it comes instead of held, and the
stream can then no longer be resumed.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass

MAX_EVENT_BYTES = 4 * 1024 * 1024
KEEPALIVE = "ping"  # the comment node readers and the gateway send to keep a stream open
# A line ends with CRLF, LF or CR; an event ends with an empty line.
_LINE_END = re.compile(rb"\r\n|\r|\n")
_BOUNDARY = re.compile(rb"(?:\r\n|\r(?!\n)|\n){2}")
_LONGEST_BOUNDARY = 4
_EOL = b"\r\n"
_COLON = ord(":")


def last_event_id(events: bytes) -> str | None:
    """The id set by the last `id` field in complete events (the spec ignores ids with NUL).

    Searched backwards with `rfind` rather than a regular expression: this runs on every
    event a follow relays, and a pattern without a literal prefix tries every position."""
    end = len(events)
    while (at := events.rfind(b"id", 0, end)) >= 0:
        end = at
        if at and events[at - 1] not in _EOL:
            continue  # not at a line's start: inside some other line
        after = at + 2
        if after >= len(events):
            continue
        mark = events[after]
        if mark in _EOL:
            return ""
        if mark != _COLON:
            continue  # a longer field name (`idx:`)
        start = after + 1 + (events[after + 1 : after + 2] == b" ")
        stop = _line_end(events, start)
        if stop < 0:
            continue  # no line end: not a whole field
        value = events[start:stop]
        if b"\0" not in value:
            return value.decode("utf-8", "replace")
    return None


def _line_end(data: bytes, start: int) -> int:
    ends = [i for i in (data.find(b"\n", start), data.find(b"\r", start)) if i >= 0]
    return min(ends) if ends else -1


def last_boundary(data: bytes | bytearray, start: int, end: int) -> int:
    """Where the last event boundary in `data[start:end]` ends, or -1. Event streams end
    their chunks with a blank line, so that case is answered without the pattern."""
    if end == len(data) and end - start >= 2 and (data.endswith((b"\n\n", b"\r\n\r\n"))):
        return end
    last = deque(_BOUNDARY.finditer(data, start, end), maxlen=1)
    return last[0].end() if last else -1


class SseFramer:
    def __init__(self, *, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self.last_id: str | None = None
        self._max = max_event_bytes
        self._pending = bytearray()
        self._scanned = 0  # bytes of `_pending` already searched for a boundary
        self._passthrough = False

    @property
    def resumable(self) -> bool:
        return not self._passthrough

    @property
    def pending(self) -> int:
        return len(self._pending)

    def feed(self, chunk: bytes) -> bytes:
        """The bytes that may be forwarded now: whole events only."""
        if self._passthrough:
            return chunk
        self._pending += chunk
        # A CR at the very end may be the first half of a CRLF: decide when more arrives.
        end = len(self._pending) - (1 if self._pending.endswith(b"\r") else 0)
        start = max(0, self._scanned - (_LONGEST_BOUNDARY - 1))
        cut = last_boundary(self._pending, start, end)
        self._scanned = end
        if cut < 0:
            if len(self._pending) > self._max:
                self._passthrough = True
                return self.discard_partial()
            return b""
        complete = bytes(self._pending[:cut])
        del self._pending[:cut]
        self._scanned = end - cut
        found = last_event_id(complete)
        if found is not None:
            self.last_id = found
        return complete

    def discard_partial(self) -> bytes:
        """Drop (and return) the incomplete event held back."""
        partial = bytes(self._pending)
        self._pending.clear()
        self._scanned = 0
        return partial


class SseError(ValueError):
    pass


@dataclass(frozen=True)
class Event:
    data: bytes
    id: str | None  # the last event id when this event was dispatched
    named: bool = False  # the event set that id itself (an `id` field of its own)
    type: str = "message"  # the `event` field (a gateway's last one: `access-ended`)


class SseParser:
    """Whole events out of an event stream (a client's view), over an `SseFramer`.

    Only whole events come out, each with the last event id as of its dispatch: an event cut
    off by a lost connection never reaches the caller, so resuming with `Last-Event-ID` set to
    the last dispatched id neither loses nor repeats one. Comments other than the keepalive (a
    merged read's "agent … unavailable") are kept in `comments` for the caller to show. An
    event larger than `max_event_bytes` is an `SseError`: a reader cannot use half of one.
    """

    def __init__(self, *, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self.last_id: str | None = None  # as of the last dispatched event
        self.comments: list[str] = []
        self._max = max_event_bytes
        self._framer = SseFramer(max_event_bytes=max_event_bytes)
        self._data: list[bytes] = []
        self._id: str | None = None  # the id buffer, committed at dispatch
        self._named = False  # an `id` field since the last dispatch
        self._type = ""

    def feed(self, chunk: bytes) -> list[Event]:
        complete = self._framer.feed(chunk)
        if not self._framer.resumable:
            raise SseError(f"an event of more than {self._max} bytes")
        events: list[Event] = []
        start = 0
        for end in _LINE_END.finditer(complete):  # the framer cuts after a line end
            event = self._line(complete[start : end.start()])
            if event is not None:
                events.append(event)
            start = end.end()
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
        elif name == b"id" and b"\0" not in value:
            self._id = value.decode("utf-8", "replace")
            self._named = True
        elif name == b"event":
            self._type = value.decode("utf-8", "replace")
        return None  # `retry` does not concern a log reader

    def _dispatch(self) -> Event | None:
        self.last_id = self._id
        data, self._data = b"\n".join(self._data), []
        named, self._named = self._named, False
        kind, self._type = self._type or "message", ""
        if not data:
            return None
        return Event(data, self.last_id, named, kind)

    def discard_partial(self) -> None:
        """The connection broke: the incomplete event held back is dropped, never completed."""
        self._framer.discard_partial()


__all__ = [
    "MAX_EVENT_BYTES",
    "Event",
    "SseError",
    "SseFramer",
    "SseParser",
    "last_boundary",
    "last_event_id",
]
