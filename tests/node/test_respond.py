"""`unless_gone`: work that outlives its client is cancelled."""

from __future__ import annotations

import asyncio

import pytest
from starlette.requests import Request

from app.node.respond import ClientGone, unless_gone


def _request(messages: list[dict[str, object]]) -> Request:
    queue: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    for m in messages:
        queue.put_nowait(m)

    async def receive() -> dict[str, object]:
        return await queue.get()

    return Request({"type": "http", "method": "GET", "headers": []}, receive)  # type: ignore[arg-type]


async def test_work_is_cancelled_when_the_client_leaves() -> None:
    cancelled = asyncio.Event()

    async def forever() -> int:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()
        return 1

    request = _request([{"type": "http.request", "body": b""}, {"type": "http.disconnect"}])
    with pytest.raises(ClientGone):
        await unless_gone(request, forever())
    assert cancelled.is_set()


async def test_work_that_finishes_answers() -> None:
    async def quick() -> int:
        return 7

    assert await unless_gone(_request([{"type": "http.request", "body": b""}]), quick()) == 7
