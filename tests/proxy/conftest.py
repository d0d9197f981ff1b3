"""The gateway under test (uvicorn in a thread, on 127.0.0.1) in front of real upstreams on
127.0.0.2: a reflector, a scripted event stream, and node readers over real journald."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from app.proxy import ProxyMetrics, ResumePolicy
from app.proxy.relay import SEND_TIMEOUT
from tests.conftest import free_port
from tests.proxy.gateway_app import TEST_RESUME, create_app
from tests.proxy.harness import serve_in_thread
from tests.proxy.upstreams import Reflector


@dataclass
class Gateway:
    base: str
    nodes: dict[str, str]
    metrics: ProxyMetrics

    def url(self, agent: str, rest: str) -> str:
        return f"{self.base}/node/{agent}{rest}"


@contextlib.contextmanager
def running_gateway(
    *,
    resume: ResumePolicy = TEST_RESUME,
    connect_timeout: float = 0.5,
    send_timeout: float = SEND_TIMEOUT,
) -> Iterator[Gateway]:
    nodes: dict[str, str] = {}
    app = create_app(
        nodes, resume=resume, connect_timeout=connect_timeout, send_timeout=send_timeout
    )
    with serve_in_thread(app, "127.0.0.1") as base:
        yield Gateway(base, nodes, app.state.metrics)


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    """Shared by a module's tests: they register their own node names and read metric deltas."""
    with running_gateway() as gw:
        yield gw


@pytest.fixture
def make_gateway() -> Iterator[Callable[..., Gateway]]:
    """A gateway of the test's own (another resume policy, fresh metrics)."""
    with contextlib.ExitStack() as stack:

        def start(**options: object) -> Gateway:
            return stack.enter_context(running_gateway(**options))  # type: ignore[arg-type]

        yield start


@pytest.fixture(scope="module")
def reflector_server() -> Iterator[tuple[str, Reflector]]:
    app = Reflector()
    with serve_in_thread(app, "127.0.0.2") as base:
        yield base, app


@pytest.fixture
def reflector(reflector_server: tuple[str, Reflector]) -> tuple[str, Reflector]:
    reflector_server[1].requests.clear()
    return reflector_server


@pytest.fixture
def closed_port() -> str:
    """A base URL on 127.0.0.2 where nothing listens."""
    return f"http://127.0.0.2:{free_port('127.0.0.2')}"


@pytest.fixture
def blackhole() -> Iterator[str]:
    """A base URL whose connects hang: a listener that never accepts, its backlog full, so the
    kernel drops further SYNs (loopback only; no routable black hole needed)."""
    listener = socket.socket()
    listener.bind(("127.0.0.2", 0))
    listener.listen(0)
    host, port = listener.getsockname()
    fillers = []
    try:
        for _ in range(4):  # a backlog of 0 still queues one or two connections
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect((host, port))
            fillers.append(filler)
        yield f"http://{host}:{port}"
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
