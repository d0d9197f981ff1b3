"""Event boundaries in a relayed event stream, so that a resumed stream repeats nothing.

The relay forwards only complete events (up to a blank line) and remembers the `id:` of the
last one; when the node goes away mid-event, the half event is dropped and the stream resumes
with `Last-Event-ID: <that id>`, so the node sends that event again, whole
(https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation).
An event larger than `MAX_EVENT_BYTES` is passed through as it comes instead of held, and the
stream can then no longer be resumed.
"""

from __future__ import annotations

import re
from collections import deque

MAX_EVENT_BYTES = 4 * 1024 * 1024
# A line ends with CRLF, LF or CR; an event ends with an empty line.
_BOUNDARY = re.compile(rb"(?:\r\n|\r(?!\n)|\n){2}")
_LONGEST_BOUNDARY = 4
_ID_FIELD = re.compile(rb"(?:\A|(?<=[\r\n]))id(?::[ ]?([^\r\n]*))?(?=[\r\n])")


def last_event_id(events: bytes) -> str | None:
    """The id set by the last `id` field in complete events (the spec ignores ids with NUL)."""
    found: str | None = None
    for match in _ID_FIELD.finditer(events):
        value = match.group(1) or b""
        if b"\0" not in value:
            found = value.decode("utf-8", "replace")
    return found


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
        last = deque(_BOUNDARY.finditer(self._pending, start, end), maxlen=1)
        self._scanned = end
        if not last:
            if len(self._pending) > self._max:
                self._passthrough = True
                return self.discard_partial()
            return b""
        cut = last[0].end()
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


__all__ = ["MAX_EVENT_BYTES", "SseFramer", "last_event_id"]
