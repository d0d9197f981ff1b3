"""Real servers for the proxy tests: uvicorn in a thread, node readers that restart on their
port, and a raw HTTP/1.1 request for targets that clients would normalise."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Self

import uvicorn
from starlette.types import ASGIApp

from app.devcluster.commands import node_argv
from app.devcluster.lifecycle import Started
from tests.conftest import free_port
from tests.support.servers import stop, wait_http


@contextlib.contextmanager
def serve_in_thread(
    app: ASGIApp, host: str = "127.0.0.1", port: int | None = None
) -> Iterator[str]:
    """`app` under uvicorn on `host` (and `port`, default a free one), in a thread with its own
    event loop; yields the base URL."""
    port = port or free_port(host)
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, ws="none"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{host}:{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn on {host}:{port} did not start")
            time.sleep(0.01)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


class NodeReader(Started):
    """`logway node --no-auth` over a namespace on a fixed address, so that it can be stopped
    and started again where the gateway expects it."""

    def __init__(self, namespace: str, *extra: str, host: str = "127.0.0.2") -> None:
        self.namespace = namespace
        self.extra = extra
        self.host = host
        self.port = free_port(host)
        self.base = f"http://{host}:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        cmd = node_argv(self.namespace, self.host, self.port, "--no-auth", *self.extra)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        wait_http(f"{self.base}/v1/fields/STREAM", self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            if self.proc.stdout:
                self.proc.stdout.close()
            self.proc = None


def raw_get(base: str, target: str, *, timeout: float = 5.0) -> tuple[int, bytes]:
    """GET `target` exactly as written (no client-side normalisation); (status, body)."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        request = f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        sock.sendall(request.encode("latin-1"))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body
