"""Real servers on loopback addresses, stopped by their owners: processes, and ASGI apps under
uvicorn (on the test's event loop, or on a thread of their own for module-scoped fixtures)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import uvicorn
from starlette.types import ASGIApp

from app.devcluster.commands import node_argv
from tests.conftest import free_port

START_TIMEOUT = 20.0


def wait_http(
    url: str, proc: subprocess.Popen[bytes], headers: dict[str, str] | None = None
) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            raise RuntimeError(f"server exited with {proc.returncode}: {out}")
        try:
            httpx.get(url, headers=headers, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def node_reader(
    namespace: str,
    *extra: str,
    host: str = "127.0.0.2",
    ready_headers: dict[str, str] | None = None,
) -> Iterator[str]:
    """`logway node` over `namespace`; yields its base URL."""
    port = free_port(host)
    cmd = node_argv(namespace, host, port, *extra)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://{host}:{port}"
    try:
        wait_http(f"{base}/v1/fields/STREAM", proc, ready_headers)
        yield base
    finally:
        stop(proc)
        if proc.stdout:
            proc.stdout.close()


@contextlib.asynccontextmanager
async def serve(app: ASGIApp) -> AsyncIterator[str]:
    """Run `app` under uvicorn on a free 127.0.0.1 port; yields the base URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", ws="none"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn exited before starting")
            await asyncio.sleep(0.005)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@contextlib.contextmanager
def serve_on_thread(app: ASGIApp) -> Iterator[str]:
    """uvicorn on its own thread and event loop, on a port bound before it starts; yields the
    base URL. For fixtures that outlive one test's event loop."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", ws="none", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(1000):
            if server.started or not thread.is_alive():
                break
            time.sleep(0.005)
        if not server.started:
            raise RuntimeError("uvicorn did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
