"""A client that stops reading loses its stream after the send timeout, and with it the
node's stream: it cannot hold a node reader's follower slot forever (nginx `send_timeout`)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from tests.proxy.conftest import Gateway
from tests.proxy.harness import serve_in_thread
from tests.proxy.upstreams import Firehose

AGENT = "de1baf83-c36c-4d23-9cb0-f89f596cd6ab-S7"


def test_a_client_that_reads_nothing_is_cut_off(make_gateway: Callable[..., Gateway]) -> None:
    gateway = make_gateway(send_timeout=1.0)
    firehose = Firehose()
    with serve_in_thread(firehose, "127.0.0.2") as node:
        gateway.nodes[AGENT] = node
        target = urlsplit(gateway.url(AGENT, "/v1/range/"))
        with socket.create_connection((target.hostname, target.port)) as client:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            request = f"GET {target.path} HTTP/1.1\r\nHost: gw\r\n\r\n"
            client.sendall(request.encode())
            deadline = time.monotonic() + 30
            while gateway.metrics.stalled_clients == 0:
                assert time.monotonic() < deadline, "the stalled client was never cut off"
                time.sleep(0.05)
            while firehose.open_streams or gateway.metrics.active_streams:
                assert time.monotonic() < deadline, "the node's stream stayed open"
                time.sleep(0.05)
            # The client still has not read a byte: the gateway let go on its own.


def test_a_slow_but_reading_client_is_not_cut_off(make_gateway: Callable[..., Gateway]) -> None:
    gateway = make_gateway(send_timeout=2.0)
    firehose = Firehose()
    with serve_in_thread(firehose, "127.0.0.2") as node:
        gateway.nodes[AGENT] = node
        target = urlsplit(gateway.url(AGENT, "/v1/range/"))
        with socket.create_connection((target.hostname, target.port)) as client:
            client.sendall(f"GET {target.path} HTTP/1.1\r\nHost: gw\r\n\r\n".encode())
            received = 0
            end = time.monotonic() + 6  # three send timeouts, reading 256 KiB every 0.1 s
            while time.monotonic() < end:
                received += len(client.recv(262144))
                time.sleep(0.1)
            assert received > 0
            assert gateway.metrics.stalled_clients == 0
            assert firehose.open_streams == 1
