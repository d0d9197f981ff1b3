"""A slow client reading a large range: the gateway holds back nothing, its memory stays flat,
and the node is slowed down instead (security §3 P11). The gateway runs as its own process so
that its RSS is its own."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.devcluster.journald import JournaldNamespace
from tests.conftest import free_port
from tests.proxy.harness import NodeReader
from tests.support.journal import Sender
from tests.support.servers import stop, wait_http

MESSAGE_BYTES = 8000
ENTRIES = 12_800  # about 100 MB of text/plain
CLIENT_RATE = 25e6  # bytes per second: a quarter of what the node can serve
MAX_RSS_GROWTH = 50e6
# Pinned, so that the kernel (tcp_rmem autotunes up to 32 MB here) cannot stand in for the
# buffering the test looks for.
CLIENT_RCVBUF = 256 * 1024


def rss(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    m = re.search(r"^VmRSS:\s+(\d+) kB$", status, re.M)
    assert m, status
    return int(m.group(1)) * 1024


def relayed(base: str) -> int:
    text = httpx.get(f"{base}/metrics", timeout=5).text
    m = re.search(r"^logway_proxy_bytes_relayed_total (\d+)$", text, re.M)
    assert m, text
    return int(m.group(1))


@pytest.fixture
def big_node(journal_namespace: JournaldNamespace) -> Iterator[NodeReader]:
    sender = Sender(journal_namespace)
    message = "m" * MESSAGE_BYTES
    for i in range(ENTRIES):
        sender.send({"MESSAGE": message, "SEQ": str(i)})
    sender.sync()
    sender.close()
    with NodeReader(journal_namespace.name) as reader:
        yield reader


@pytest.fixture
def gateway_process(big_node: NodeReader) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "tests.proxy.gateway_app",
        f"--port={port}",
        f"--node=big={big_node.base}",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(f"{base}/metrics", proc)
        yield base, proc
    finally:
        stop(proc)
        if proc.stdout:
            proc.stdout.close()


def test_slow_client_keeps_gateway_memory_flat(
    gateway_process: tuple[str, subprocess.Popen[bytes]],
) -> None:
    base, proc = gateway_process
    url = f"{base}/node/big/v1/range/"
    # Warm up: imports, the pool, a first relay.
    assert httpx.get(f"{url}?limit=10", timeout=10).status_code == 200
    baseline = rss(proc.pid)
    relayed_before = relayed(base)
    peak = [baseline]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss(proc.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    transport = httpx.HTTPTransport(
        socket_options=[(socket.SOL_SOCKET, socket.SO_RCVBUF, CLIENT_RCVBUF)]
    )
    received = 0
    started = time.monotonic()
    try:
        with (
            httpx.Client(transport=transport, timeout=30) as client,
            client.stream("GET", url, headers={"accept": "text/plain"}) as response,
        ):
            assert response.status_code == 200
            for chunk in response.iter_raw():
                received += len(chunk)
                # Sleep off whatever we are ahead of the client's pace.
                ahead = received / CLIENT_RATE - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
    finally:
        done.set()
        sampler.join()
    assert received > ENTRIES * MESSAGE_BYTES
    growth = peak[0] - baseline
    assert growth < MAX_RSS_GROWTH, f"gateway RSS grew by {growth / 1e6:.1f} MB"
    assert relayed(base) - relayed_before == received
