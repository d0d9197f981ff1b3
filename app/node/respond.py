"""Readings → HTTP responses with dcos-log's headers, status codes and stream lifecycle.

Range: 204 with no body when nothing would be written (so the first chunk is read before
the status is chosen). Streams: headers flushed at once, `X-Accel-Buffering: no`, SSE
heartbeats while idle; the reading is released when the client goes away.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

from sse_starlette import EventSourceResponse
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from app.journal.encoders import SSE, Encoder
from app.journal.source import Reading

T = TypeVar("T")
CLIENT_GONE = 499  # nginx's "client closed request": nobody reads this answer

COMMON_HEADERS = {"Cache-Control": "no-cache", "Access-Control-Allow-Origin": "*"}
GZIP_WBITS = 31  # zlib: gzip container


def _skip_headers(reading: Reading) -> dict[str, str]:
    return {
        "X-Journal-Skip-Next": str(reading.skipped.next),
        "X-Journal-Skip-Prev": str(reading.skipped.prev),
    }


async def _encoded(reading: Reading, encoder: Encoder, heartbeat: float) -> AsyncIterator[bytes]:
    ping = encoder.heartbeat()
    async for entries in reading.batches(heartbeat=heartbeat):
        if entries:
            data = encoder.encode(entries)
            if data:
                yield data
        elif ping is not None:
            yield ping


async def _prepend(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    async for chunk in rest:
        yield chunk


async def _gzip(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    compressor = zlib.compressobj(wbits=GZIP_WBITS)
    async for chunk in chunks:
        out = compressor.compress(chunk)
        if out:
            yield out
    yield compressor.flush()


class ClientGone(Exception):
    """The client left before the answer was ready."""


async def unless_gone(request: Request | None, work: Awaitable[T]) -> T:
    """`work`, cancelled if the client disconnects first (a search for a rare match can
    scan a long time before its first byte: it must not outlive its client)."""
    if request is None:
        return await work
    task = asyncio.ensure_future(work)

    async def gone() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(gone())
    try:
        await asyncio.wait((task, watcher), return_when=asyncio.FIRST_COMPLETED)
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
            await asyncio.wait((task,))
    if task.cancelled():
        raise ClientGone
    return task.result()


async def range_response(
    reading: Reading,
    encoder: Encoder,
    *,
    skip_headers: bool = True,
    download_name: str | None = None,
    request: Request | None = None,
) -> Response:
    headers = {**COMMON_HEADERS, **(_skip_headers(reading) if skip_headers else {})}
    chunks = reading.encoded(encoder)
    try:
        first = await unless_gone(request, anext(chunks, None))
    except ClientGone:
        await reading.aclose()
        return Response(status_code=CLIENT_GONE)
    except BaseException:
        await reading.aclose()
        raise
    if first is None:
        await reading.aclose()
        return Response(status_code=204, headers=headers)
    body = _prepend(first, chunks)
    if download_name is not None:
        body = _gzip(body)
        headers["Content-Type"] = "application/gzip"
        headers["Content-Disposition"] = f"attachment; filename={download_name}.log.gz"
    else:
        headers["Content-Type"] = encoder.media_type
    return StreamingResponse(body, headers=headers, background=BackgroundTask(reading.aclose))


async def count_response(reading: Reading, request: Request) -> Response:
    """`{"entries": N}`: what the range would send (with grep=, its matches)."""
    try:
        n = await unless_gone(request, reading.count())
    except ClientGone:
        await reading.aclose()
        return Response(status_code=CLIENT_GONE)
    return JSONResponse({"entries": n}, headers=COMMON_HEADERS)


def stream_response(
    reading: Reading,
    encoder: Encoder,
    *,
    heartbeat: float,
    deadline: float | None = None,
    skip_headers: bool = True,
) -> Response:
    """`deadline`: when the caller's token expires the stream ends; an SSE client reconnects
    with a fresh token and `Last-Event-ID`, and loses nothing."""
    reading.deadline = deadline
    headers = {
        **COMMON_HEADERS,
        **(_skip_headers(reading) if skip_headers else {}),
        "X-Accel-Buffering": "no",
        "Content-Type": encoder.media_type,
    }
    body = _encoded(reading, encoder, heartbeat=heartbeat)
    closer = BackgroundTask(reading.aclose)
    if encoder.media_type == SSE:
        # Our own idle-only `: ping` (dcos-log's), not sse-starlette's periodic one.
        return EventSourceResponse(body, headers=headers, ping=0, background=closer)
    return StreamingResponse(body, headers=headers, background=closer)
