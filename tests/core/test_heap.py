"""`freeze_startup_heap` (in a child process: freezing is for the whole process) and the
server hook that calls it once the application has started, before the first request."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import httpx
import uvicorn
from starlette.types import Receive, Scope, Send

from app.core.graceful import GracefulServer, OpenStreams

# Garbage made before the freeze is collected, not frozen; what lives is frozen; a full
# collection afterwards walks only what was made since.
PROBE = """
import gc, weakref
from app.core.heap import freeze_startup_heap
class Node:
    pass
a, b = Node(), Node()
a.other, b.other = b, a
gone = weakref.ref(a)
del a, b
kept = [Node() for _ in range(1000)]
freeze_startup_heap()
after = [Node() for _ in range(10)]
print(gone() is None, gc.get_freeze_count(), len(gc.get_objects()))
"""


def test_freezing_collects_then_hides_the_live_heap_from_the_collector() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    ).stdout.split()
    collected, frozen, tracked = out[0] == "True", int(out[1]), int(out[2])
    assert collected  # the cycle made before the freeze was not frozen
    assert frozen >= 1000  # the kept list and its Nodes at least
    assert tracked < 100  # what the collector still walks: what was made after


async def test_on_started_runs_after_the_lifespan_and_before_a_request_sent_then(
    tmp_path: Path,
) -> None:
    events: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    events.append("lifespan started")
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        events.append("request")
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    socket = tmp_path / "server.sock"
    config = uvicorn.Config(app, uds=str(socket), lifespan="on", log_level="warning")
    started = asyncio.Event()

    def on_started() -> None:
        events.append("started")
        started.set()

    server = GracefulServer(config, OpenStreams(), on_started=on_started)
    serving = asyncio.create_task(server.serve())
    waiting = asyncio.create_task(started.wait())
    try:
        await asyncio.wait({serving, waiting}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        assert started.is_set(), "the server stopped (or hung) before it started"
        async with httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=str(socket))) as c:
            assert (await c.get("http://server/")).status_code == 204
    finally:
        waiting.cancel()
        server.should_exit = True
        await serving
    assert events == ["lifespan started", "started", "request"]
