"""The forwarder's reading of the gateway's event streams: whole events split on blank
lines, `id:` and `data:` taken per event. The gateway relays what the node reader and the
merge write (`id: …\\ndata: …\\n\\n`, `: ping` comments), for which this costs a fraction of
the general parser (`app.proxy.sse`, every line through a regular expression); a stream
with a carriage return in it is handed to that parser for the rest of its life.

The gateway's last event when the caller's access ended (`event: access-ended`, its data
the reason) is no entry: it is kept in `ended`, not returned."""

from __future__ import annotations

from app.authz.access import ACCESS_ENDED_EVENT
from app.proxy.sse import KEEPALIVE, SseError, SseParser

# As the CLI's follow: far above a journal entry the node reader sends.
MAX_EVENT_BYTES = 16 * 1024 * 1024

Event = tuple[str | None, bytes]  # (the last event id as of this event, its data)


class EventSplitter:
    def __init__(self) -> None:
        self.last_id: str | None = None
        self.comments: list[str] = []
        self.ended: str | None = None  # why the gateway ended the stream (access-ended)
        self._pending = b""
        self._general: SseParser | None = None

    def feed(self, chunk: bytes) -> list[Event]:
        if self._general is None and b"\r" in chunk:
            self._general = SseParser(max_event_bytes=MAX_EVENT_BYTES)
            chunk, self._pending = self._pending + chunk, b""
        if self._general is not None:
            parsed = self._general.feed(chunk)
            self.comments += self._general.comments
            self._general.comments.clear()
            self.last_id = self._general.last_id
            for e in parsed:
                if e.type == ACCESS_ENDED_EVENT:
                    self.ended = e.data.decode("utf-8", "replace")
            return [(e.id, e.data) for e in parsed if e.type == "message"]
        parts = (self._pending + chunk).split(b"\n\n")
        self._pending = parts.pop()
        if len(self._pending) > MAX_EVENT_BYTES:
            raise SseError(f"an event of more than {MAX_EVENT_BYTES} bytes")
        events: list[Event] = []
        append = events.append
        for part in parts:
            # The usual event, `id: <cursor>\ndata: <entry>`, without a loop over its lines.
            if part.startswith(b"id: "):
                newline = part.find(b"\n")
                if (
                    newline > 0
                    and part.startswith(b"data: ", newline + 1)
                    and part.find(b"\n", newline + 1) < 0
                    and part.find(b"\0", 0, newline) < 0
                ):
                    self.last_id = part[4:newline].decode("utf-8", "replace")
                    if len(part) > newline + 7:
                        append((self.last_id, part[newline + 7 :]))
                    continue
            data: bytes | None = None
            kind = b"message"
            for line in part.split(b"\n"):
                if line.startswith(b"data:"):
                    value = line[6:] if line.startswith(b"data: ") else line[5:]
                    data = value if data is None else data + b"\n" + value
                elif line.startswith(b"id:"):
                    value = line[4:] if line.startswith(b"id: ") else line[3:]
                    if b"\0" not in value:
                        self.last_id = value.decode("utf-8", "replace")
                elif line.startswith(b"event:"):
                    kind = line[7:] if line.startswith(b"event: ") else line[6:]
                elif line.startswith(b":"):
                    comment = line[1:].decode("utf-8", "replace").strip()
                    if comment and comment != KEEPALIVE:
                        self.comments.append(comment)
            if kind == ACCESS_ENDED_EVENT.encode():
                self.ended = (data or b"").decode("utf-8", "replace")
            elif data and kind == b"message":
                append((self.last_id, data))
        return events
