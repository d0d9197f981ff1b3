"""Through the gateway under test to real node readers over real journald namespaces."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from app.devcluster.journald import JournaldNamespace
from tests.node.test_follow import SseClient, metric, send_range, seqs
from tests.proxy.conftest import Gateway
from tests.proxy.harness import NodeReader
from tests.support.journal import Sender, sending_namespace

RECONNECTING = ": upstream reconnecting"


@pytest.fixture
def node(journal_namespace: JournaldNamespace) -> Iterator[tuple[NodeReader, Sender]]:
    sender = Sender(journal_namespace)
    with NodeReader(journal_namespace.name, "--heartbeat=0.5") as reader:
        yield reader, sender
    sender.close()


@pytest.fixture(scope="module")
def range_node() -> Iterator[NodeReader]:
    """300 entries, shared by the range tests (they only read)."""
    with sending_namespace() as (ns, sender):
        for i in range(300):
            fields = {"MESSAGE": f"line {i} " + "x" * (i % 97), "SEQ": str(i)}
            sender.send({**fields, "K": "even" if i % 2 == 0 else "odd"})
        sender.sync()
        with NodeReader(ns.name) as reader:
            yield reader


@pytest.mark.parametrize(
    ("path", "accept"),
    [
        ("/v1/range/", "text/plain"),
        ("/v1/range/?skip_prev=50&limit=20", "application/json"),
        ("/v1/range/?filter=K:even", "text/event-stream"),
        ("/v1/range/download", "application/json"),
        ("/v2/component?skip=-30", "application/json"),
    ],
)
def test_range_is_relayed_byte_identical(
    gateway: Gateway, range_node: NodeReader, path: str, accept: str
) -> None:
    reader = range_node
    gateway.nodes["range"] = reader.base
    headers = {"accept": accept}
    direct = httpx.get(reader.base + path, headers=headers, timeout=10)
    relayed = httpx.get(gateway.url("range", path), headers=headers, timeout=10)
    assert direct.status_code == 200
    assert relayed.status_code == 200
    assert len(relayed.content) > 1000
    assert relayed.content == direct.content
    for name in ("content-type", "content-disposition", "x-journal-skip-next", "cache-control"):
        assert relayed.headers.get(name) == direct.headers.get(name)


def test_an_empty_range_stays_204(gateway: Gateway, range_node: NodeReader) -> None:
    reader = range_node
    gateway.nodes["empty"] = reader.base
    response = httpx.get(gateway.url("empty", "/v1/range/?filter=K:none"), timeout=10)
    assert response.status_code == 204
    assert response.content == b""


def test_the_nodes_400_reaches_the_client(
    gateway: Gateway, node: tuple[NodeReader, Sender]
) -> None:
    reader, _ = node
    gateway.nodes["bad"] = reader.base
    response = httpx.get(gateway.url("bad", "/v1/stream/?limit=1"), timeout=10)
    assert response.status_code == 400
    assert "limit" in response.text


def test_follow_relays_new_entries(gateway: Gateway, node: tuple[NodeReader, Sender]) -> None:
    reader, sender = node
    gateway.nodes["follow"] = reader.base
    send_range(sender, 0, 5, K="f")
    client = SseClient(gateway.url("follow", "/v1/stream/?filter=K:f"))
    assert client.response.headers["x-accel-buffering"] == "no"
    assert seqs(client.take(5)) == list(range(5))
    send_range(sender, 5, 8, K="f")
    assert seqs(client.take(3)) == [5, 6, 7]
    client.close()


def test_client_disconnect_closes_the_upstream_within_a_second(
    gateway: Gateway, node: tuple[NodeReader, Sender]
) -> None:
    reader, sender = node
    gateway.nodes["leave"] = reader.base
    send_range(sender, 0, 1)
    active = gateway.metrics.active_streams
    clients = [SseClient(gateway.url("leave", "/v1/stream/?skip_prev=1")) for _ in range(3)]
    for client in clients:
        client.take(1)  # then idle: only the node's pings flow
    # The three send the node the same request: they share one upstream (issue 17).
    assert metric(reader.base, "logway_node_followers") == 1
    assert gateway.metrics.shared_upstreams == 1
    assert gateway.metrics.active_streams == active + 3
    clients.pop().close()  # one leaves: the others' upstream stays
    time.sleep(0.2)
    assert metric(reader.base, "logway_node_followers") == 1
    for client in clients:
        client.close()
    deadline = time.monotonic() + 1.0
    while metric(reader.base, "logway_node_followers") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert metric(reader.base, "logway_node_followers") == 0
    assert gateway.metrics.active_streams == active
    assert gateway.metrics.shared_upstreams == 0


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_node_restart_mid_stream_loses_and_repeats_nothing(
    gateway: Gateway, node: tuple[NodeReader, Sender], how: signal.Signals
) -> None:
    """Entries written before, during and after the outage reach the client exactly once,
    while a writer keeps going through the restart."""
    reader, sender = node
    gateway.nodes["restart"] = reader.base
    send_range(sender, 0, 20, K="r")
    client = SseClient(gateway.url("restart", "/v1/stream/?filter=K:r"))
    got = client.take(20)

    written = [20]
    stop = threading.Event()

    def writer() -> None:
        while not stop.is_set():
            send_range(sender, written[0], written[0] + 5, K="r")
            written[0] += 5
            time.sleep(0.01)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(0.2)
        assert reader.proc is not None
        reader.proc.send_signal(how)
        reader.proc.wait(10)
        reader.stop()
        time.sleep(0.3)  # the outage: the writer goes on
        reader.start()
        time.sleep(0.2)
    finally:
        stop.set()
        thread.join()
    send_range(sender, written[0], written[0] + 10, K="r")
    total = written[0] + 10

    comments = []
    for event_id, data, comment in client.events():
        if comment is not None:
            comments.append(comment)
        if data is not None:
            assert event_id is not None
            got.append((event_id, data))
            if len(got) == total:
                break
    client.close()
    assert seqs(got) == list(range(total))
    assert RECONNECTING in comments
