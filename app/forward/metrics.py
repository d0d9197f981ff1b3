"""`metrics = "HOST:PORT"`: the Prometheus text format on `GET /metrics`, from a tiny
asyncio server (one short answer per connection; nothing else is served)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from app.forward.stats import PipelineStats, prometheus

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
READ_TIMEOUT = 5.0


def parse_listen(raw: str) -> tuple[str, int]:
    host, sep, port = raw.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--metrics {raw!r}: expected HOST:PORT")
    return host or "127.0.0.1", int(port)


async def serve(listen: str, pipelines: Sequence[PipelineStats]) -> asyncio.Server:
    host, port = parse_listen(listen)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, TimeoutError, asyncio.IncompleteReadError):
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
            path = request.split(b" ", 2)[1] if request.count(b" ") >= 2 else b""
            if path == b"/metrics":
                status, body = b"200 OK", prometheus(pipelines)
            else:
                status, body = b"404 Not Found", b"see /metrics\n"
            writer.write(
                b"HTTP/1.1 %b\r\nContent-Type: %b\r\nContent-Length: %d\r\n"
                b"Connection: close\r\n\r\n%b" % (status, CONTENT_TYPE, len(body), body)
            )
            await writer.drain()
        writer.close()

    return await asyncio.start_server(answer, host, port)
