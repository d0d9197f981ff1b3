"""Fault tests, node side: a real `logway gateway` relaying a follow stream from a real node
reader that is killed mid-stream or goes away for good, and a big follow to a client that
reads slowly and then leaves (ARCHITECTURE §3 step 4; STYLE habit 6)."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from types import TracebackType

import httpx
import pytest

from app.core.graceful import SHUTDOWN_COMMENT
from app.devcluster.mesos import SimFramework, SimTask
from app.proxy import ResumePolicy
from app.proxy.relay import RECONNECTING
from tests.conftest import journald_available
from tests.gateway.support import (
    FAULT_AGENTS,
    FAULT_HOSTS,
    FAULT_MASTER_ID,
    FaultCluster,
    fault_cluster,
    listener_pid,
    metric,
)
from tests.node.test_follow import SseClient
from tests.proxy.test_memory import rss
from tests.support.journal import Sender
from tests.support.wait import wait_for

pytestmark = pytest.mark.skipif(
    not journald_available(), reason="needs root and /lib/systemd/systemd-journald"
)

HOST, AGENT = FAULT_HOSTS[0], FAULT_AGENTS[0]
RUN = "LOGWAY_TEST_RUN"  # each test's entries carry its own value, and it follows only those
COMMENT = RECONNECTING.decode().strip()
FOLLOWERS = "logway_node_followers"
STREAM_DEADLINE = 120.0  # fails a test whose stream would otherwise hang

# The slow client: ~100 MB of journal, read at 5 MB/s until 20 MB have arrived.
MESSAGE_BYTES = 8000
ENTRIES = 12_800
CLIENT_RATE = 5e6
READ_BYTES = 20e6
MAX_RSS_GROWTH = 30e6
# Pinned, so that the kernel (tcp_rmem autotunes up to 32 MB here) cannot stand in for a
# buffer in the gateway.
CLIENT_RCVBUF = 256 * 1024


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultCluster]:
    with fault_cluster(tmp_path_factory.mktemp("faults-nodes")) as built:
        yield built


@pytest.fixture(scope="module")
def gateway(cluster: FaultCluster) -> Iterator[str]:
    with cluster.gateway() as base:  # Admin Router's cache timings
        yield base


@pytest.fixture(autouse=True)
def restored(cluster: FaultCluster) -> Iterator[None]:
    yield
    cluster.restore()


def stream_url(gateway: str, run: str, query: str = "") -> str:
    return f"{gateway}/system/v1/agent/{AGENT}/logs/v1/stream/?filter={RUN}:{run}{query}"


def write(sender: Sender, run: str, first: int, end: int) -> None:
    for n in range(first, end):
        sender.send({"MESSAGE": f"seq {n}", RUN: run})


def seq(data: dict[str, object]) -> int:
    fields = data["fields"]
    assert isinstance(fields, dict)
    return int(fields["MESSAGE"].removeprefix("seq "))


class Writer:
    """Writes `seq N` entries in a thread until the `with` block ends; `written` is next N."""

    def __init__(self, sender: Sender, run: str, first: int) -> None:
        self.written = first
        self._sender, self._run = sender, run
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._write, name="journal-writer")

    def _write(self) -> None:
        while not self._stop.is_set():
            write(self._sender, self._run, self.written, self.written + 5)
            self.written += 5
            time.sleep(0.01)

    def more_than(self, n: int) -> bool | None:
        return self.written > n or None

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()


def test_reader_killed_mid_stream_the_client_sees_every_entry_once_in_order(
    cluster: FaultCluster, gateway: str
) -> None:
    reader, sender, run = cluster.readers[HOST], cluster.senders[HOST], uuid.uuid4().hex
    write(sender, run, 0, 30)
    # As `dcos node log --follow` asks: the last 10, then new ones. A resume that applied
    # `skip_prev` again would repeat entries.
    client = SseClient(stream_url(gateway, run, "&skip_prev=10"), headers=cluster.admin)
    got = [seq(data) for _, data in client.take(10)]
    with Writer(sender, run, 30) as writer:
        wait_for("lines before the kill", lambda: writer.more_than(100))
        reader.kill()
        down = writer.written
        wait_for("lines while the reader is down", lambda: writer.more_than(down + 100))
        reader.start()  # same address
        up = writer.written
        wait_for("lines after the restart", lambda: writer.more_than(up + 100))
    total = writer.written

    comments = []
    deadline = time.monotonic() + STREAM_DEADLINE
    for _, data, comment in client.events():
        assert time.monotonic() < deadline, f"{len(got)} of {total - 20} entries arrived"
        if comment is not None:
            comments.append(comment)
        if data is not None:
            got.append(seq(data))
            if len(got) == total - 20:
                break
    client.close()
    assert got == list(range(20, total))
    assert COMMENT in comments


def test_reader_gone_for_good_the_stream_ends_cleanly_after_bounded_retries(
    cluster: FaultCluster, gateway: str
) -> None:
    reader, sender, run = cluster.readers[HOST], cluster.senders[HOST], uuid.uuid4().hex
    write(sender, run, 0, 5)
    client = SseClient(stream_url(gateway, run), headers=cluster.admin)
    assert [seq(data) for _, data in client.take(5)] == [0, 1, 2, 3, 4]
    reader.kill()
    comments = []
    deadline = time.monotonic() + STREAM_DEADLINE
    # Ends when the gateway gives up: a clean end of the chunked body (a cut one would
    # raise httpx.RemoteProtocolError here).
    for _, data, comment in client.events():
        assert time.monotonic() < deadline, "the stream did not end"
        assert data is None, data
        if comment is not None:
            comments.append(comment)
    client.close()
    assert 1 <= comments.count(COMMENT) <= ResumePolicy().attempts


def test_slow_client_gateway_memory_stays_flat_and_the_upstream_closes_when_it_leaves(
    cluster: FaultCluster, gateway: str
) -> None:
    reader, sender, run = cluster.readers[HOST], cluster.senders[HOST], uuid.uuid4().hex
    padding = "x" * MESSAGE_BYTES
    for n in range(ENTRIES):
        sender.send({"MESSAGE": f"seq {n} {padding}", RUN: run})
    sender.sync()
    url, pid = stream_url(gateway, run), listener_pid(gateway)

    def followers() -> int:
        return metric(reader.url, FOLLOWERS, cluster.node_headers(reader))

    # Warm up: imports, connection pools, the gateway's service token, a first relay.
    warm = SseClient(url, headers=cluster.admin)
    warm.take(10)
    warm.close()
    wait_for("the warm-up follower gone", lambda: followers() == 0 or None)

    baseline = rss(pid)
    peak = [baseline]
    sampling = threading.Event()
    sampling.set()

    def sample() -> None:
        while sampling.is_set():
            peak[0] = max(peak[0], rss(pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, name="rss-sampler")
    sampler.start()
    transport = httpx.HTTPTransport(
        socket_options=[(socket.SOL_SOCKET, socket.SO_RCVBUF, CLIENT_RCVBUF)]
    )
    headers = {**cluster.admin, "Accept": "text/event-stream"}
    received = 0
    try:
        with (
            httpx.Client(transport=transport, timeout=30) as client,
            client.stream("GET", url, headers=headers) as response,
        ):
            assert response.status_code == 200
            started = time.monotonic()
            for chunk in response.iter_raw():
                received += len(chunk)
                if received >= READ_BYTES:
                    # Still following (leaving the loop closes the response).
                    assert followers() == 1
                    break
                ahead = received / CLIENT_RATE - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
    finally:
        sampling.clear()
        sampler.join()
    assert received >= READ_BYTES
    growth = peak[0] - baseline
    assert growth < MAX_RSS_GROWTH, f"gateway RSS grew by {growth / 1e6:.1f} MB"
    # The client left: the gateway closes its connection to the reader, and the stream.
    wait_for("the reader's follower gone", lambda: followers() == 0 or None, timeout=5)
    streams = "logway_proxy_active_streams"
    wait_for("no stream", lambda: metric(gateway, streams, cluster.admin) == 0 or None, timeout=5)


def test_sigterm_ends_every_follow_cleanly_with_a_comment(cluster: FaultCluster) -> None:
    """Issue 12 §6: clients saw a cut chunked body and the gateway logged a traceback per
    stream. Now each ends at once with a last comment, and the client keeps its last id:
    relayed follows and merged role and app follows alike (a whole response: httpx raises on
    a cut chunked body)."""
    sender, run = cluster.senders[HOST], uuid.uuid4().hex
    write(sender, run, 0, 2)
    # A Marathon task of its own (app /sigterm/web, role sigterm) for the merged follows.
    framework = f"{FAULT_MASTER_ID}-{run[:4]}"
    task = SimTask(
        f"sigterm_web.{run}",
        "web",
        framework,
        AGENT,
        executor_id=f"exec-{run}",
        containers=(f"c-{run}",),
        labels={"DCOS_SPACE": "/sigterm/web"},
        role="sigterm",
    )
    cluster.sim.add_framework(SimFramework(framework, "marathon"))
    cluster.sim.add_task(task)
    for n in range(2):
        sender.send(
            {
                "MESSAGE": f"task seq {n}",
                "FRAMEWORK_ID": framework,
                "EXECUTOR_ID": task.executor_id,
                "CONTAINER_ID": task.containers[0],
                "STREAM": "STDOUT",
            }
        )
    sender.sync()
    merged = "/system/v1/logs/v1"
    try:
        with cluster.gateway() as gateway:
            urls = [stream_url(gateway, run) for _ in range(3)] + [
                f"{gateway}{merged}/role/sigterm/stream/?skip_prev=2",
                f"{gateway}{merged}/app/sigterm/web/stream/?skip_prev=2",
            ]
            clients = [SseClient(url, headers=cluster.admin) for url in urls]
            last_ids = [client.take(2)[-1][0] for client in clients]
            log = sorted(cluster.tmp.glob("gateway-*.log"), key=lambda p: p.stat().st_mtime)[-1]
            started = time.monotonic()
            os.kill(listener_pid(gateway), signal.SIGTERM)
            for url, client, last_id in zip(urls, clients, last_ids, strict=True):
                comments = [c for _, data, c in client.events() if data is None and c]
                assert comments, url
                assert comments[-1] == SHUTDOWN_COMMENT.decode().strip(), (url, comments)
                assert last_id  # what the client resumes with, elsewhere
                client.close()
            assert time.monotonic() - started < 2
            wait_for("the gateway's exit", lambda: (not _listening(gateway)) or None, timeout=10)
    finally:
        cluster.sim.remove_task(task.id)
    text = log.read_text(errors="replace")
    assert "Traceback" not in text, text[-2000:]
    assert "Cancel" not in text, text[-2000:]


def _listening(base: str) -> bool:
    try:
        httpx.get(base + "/healthz", timeout=1)
    except httpx.TransportError:
        return False
    return True
