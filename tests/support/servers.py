"""Real server processes on loopback addresses, stopped by their owners."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Iterator

import httpx

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
