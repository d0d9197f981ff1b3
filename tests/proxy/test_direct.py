"""`app.proxy.direct` alone: a server `send` that returns at once, and one that waits for its
client's buffer to drain (as uvicorn's does), driven on the caller's stack."""

from __future__ import annotations

import asyncio

import pytest
from starlette.types import Message

from app.proxy.direct import SERVER_SEND, keep_server_send, send_now, server_send


class Server:
    """A server's send: writes at once unless `paused`, then waits for `writable`."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.writable = asyncio.Event()
        self.writable.set()
        self.closed = False

    async def send(self, message: Message) -> None:
        try:
            await self.writable.wait()
        except GeneratorExit:
            self.closed = True
            raise
        self.written.append(message["body"])


def body(data: bytes) -> Message:
    return {"type": "http.response.body", "body": data, "more_body": True}


async def test_a_send_that_need_not_wait_is_done_on_the_callers_stack() -> None:
    server = Server()
    assert send_now(server.send, body(b"one")) is None
    assert server.written == [b"one"]


async def test_a_send_that_must_wait_is_finished_by_another_task() -> None:
    server = Server()
    server.writable.clear()
    pending = send_now(server.send, body(b"one"))
    assert pending is not None
    assert server.written == []
    finishing = asyncio.create_task(pending.finish())
    await asyncio.sleep(0)
    assert not finishing.done()
    server.writable.set()
    await asyncio.wait_for(finishing, 5)
    assert server.written == [b"one"]


async def test_a_waiting_send_cancelled_is_closed_and_writes_nothing() -> None:
    server = Server()
    server.writable.clear()
    pending = send_now(server.send, body(b"one"))
    assert pending is not None
    finishing = asyncio.create_task(pending.finish())
    await asyncio.sleep(0)
    finishing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await finishing
    assert server.closed
    server.writable.set()
    assert server.written == []


async def test_the_scope_keeps_the_servers_send_for_http_only() -> None:
    server = Server()
    http: dict[str, object] = {"type": "http"}
    keep_server_send(http, server.send)
    assert http[SERVER_SEND] == server.send
    assert server_send(http) == server.send
    lifespan: dict[str, object] = {"type": "lifespan"}
    keep_server_send(lifespan, server.send)
    assert server_send(lifespan) is None
