"""`journal-remote+http(s)://host:port`: the Journal Export Format
(https://systemd.io/JOURNAL_EXPORT_FORMATS/) POSTed to `systemd-journal-remote`'s `/upload`,
every field of the entry kept byte for byte; 202 means written."""

from __future__ import annotations

from collections.abc import Sequence

import httpx

from app.forward import http_sink
from app.forward.record import Record
from app.forward.sink import SinkError, public

MEDIA_TYPE = "application/vnd.fdo.journal"


class JournalRemoteSink:
    def __init__(self, url: str) -> None:
        self.name = public(url)
        self.url = http_sink.target(url, "journal-remote+", "/upload")
        self._client = http_sink.client(url)

    @classmethod
    def from_url(cls, url: str) -> JournalRemoteSink:
        return cls(url)

    async def send(self, batch: Sequence[Record]) -> None:
        body = b"".join(export(r) for r in batch)
        try:
            response = await self._client.post(
                self.url, content=body, headers={"Content-Type": MEDIA_TYPE}
            )
        except httpx.TransportError as exc:
            raise http_sink.transport_error(self.name, exc) from exc
        http_sink.check(self.name, response)
        if response.status_code not in (200, 202):
            raise SinkError(f"{self.name} answered {response.status_code}", retryable=True)

    async def close(self) -> None:
        await self._client.aclose()


def export(record: Record) -> bytes:
    """One entry: `__CURSOR`, `__REALTIME_TIMESTAMP`, `__MONOTONIC_TIMESTAMP` (from the
    cursor), then each field as `NAME=value\\n`, or `NAME\\n<le64 length><bytes>\\n` when
    the value holds a newline or is not text; a blank line ends it."""
    out = [
        b"__CURSOR=%s\n" % record.cursor.encode(),
        b"__REALTIME_TIMESTAMP=%d\n" % record.realtime,
    ]
    monotonic = _cursor_part(record.cursor, "m=")
    if monotonic is not None:
        out.append(b"__MONOTONIC_TIMESTAMP=%d\n" % monotonic)
    for name, value in record.fields.items():
        raw = value.encode() if isinstance(value, str) else bytes(value)
        key = name.encode()
        if b"\n" in raw or not isinstance(value, str):
            out.append(key + b"\n" + len(raw).to_bytes(8, "little") + raw + b"\n")
        else:
            out.append(key + b"=" + raw + b"\n")
    out.append(b"\n")
    return b"".join(out)


def _cursor_part(cursor: str, prefix: str) -> int | None:
    for part in cursor.split(";"):
        if part.startswith(prefix):
            try:
                return int(part[len(prefix) :], 16)
            except ValueError:
                return None
    return None
