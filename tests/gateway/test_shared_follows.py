"""Shared upstream follows (issue 17), end to end: a real gateway (embedded IAM), one
`logway node` over a journald namespace on 127.62.1.1, the Mesos simulator on .2, the
gateway on .3. Callers whose follows send the node the same request share one upstream
stream; each still gets exactly the bytes it would get alone, is watched on its own, and a
slow one holds nobody else.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import httpx
import pytest

from app.authz.access import ACCESS_REVOKED
from app.authz.route_table import SYSTEM_LOGS_RID
from app.devcluster.journald import JournaldNamespace
from app.devcluster.mesos import MesosSimulator, SimAgent, SimCluster
from tests.conftest import journald_available, new_namespace_name
from tests.gateway.support import (
    GATEWAY_UID,
    Reader,
    add_user,
    grant,
    login,
    metric,
    node_headers,
)
from tests.support.gateway import gateway as support_gateway
from tests.support.journal import Sender
from tests.support.wait import wait_for

pytestmark = pytest.mark.skipif(not journald_available(), reason="needs root and journald")

PASSWORD = "admin password for shared follow tests"
HOST, MESOS_HOST, GATEWAY_HOST = "127.62.1.1", "127.62.1.2", "127.62.1.3"
MASTER_ID = "6a1e5c0d-0000-4000-8000-00000000f017"
AGENT = f"{MASTER_ID}-S0"
RUN = "TEST_RUN"
SHARED = "logway_proxy_shared_upstreams"
FOLLOWERS = "logway_node_followers"
STALLED = "logway_proxy_stalled_clients_total"
DEADLINE = 30.0


@dataclass
class Env:
    base: str
    admin: dict[str, str]
    sender: Sender
    reader: str
    node: dict[str, str]  # the gateway's credential for the reader, to read its /metrics

    def url(self, query: str = "") -> str:
        return f"{self.base}/system/v1/agent/{AGENT}/logs/v1/stream/{query}"

    def write(self, run: str, text: str) -> None:
        self.sender.send({"MESSAGE": text, RUN: run, "SYSLOG_IDENTIFIER": "shared-test"})

    def shared(self) -> int:
        return metric(self.base, SHARED, self.admin)

    def node_followers(self) -> int:
        return metric(self.reader, FOLLOWERS, self.node)

    def settled(self, shared: int, followers: int) -> None:
        """Wait until the gateway holds `shared` upstreams and the node `followers`."""
        wait_for(
            f"{shared} shared upstreams, {followers} node followers",
            lambda: (self.shared(), self.node_followers()) == (shared, followers) or None,
            timeout=DEADLINE,
        )


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("shared-follows")
    cluster = SimCluster(master_id=MASTER_ID)
    cluster.agents = [SimAgent(AGENT, HOST)]
    with contextlib.ExitStack() as stack:
        ns = stack.enter_context(JournaldNamespace(new_namespace_name()))
        sim = stack.enter_context(MesosSimulator(cluster, masters=[(MESOS_HOST, 0)]))
        port = _free_port(HOST)
        base = stack.enter_context(
            support_gateway(
                tmp / "gateway",
                f"--mesos={sim.urls[0]}",
                f"--reader-port={port}",
                password=PASSWORD,
                host=GATEWAY_HOST,
            )
        )
        reader = Reader(ns.name, HOST, port, f"{base}/acs/api/v1/auth/jwks", tmp / "reader.log")
        stack.callback(reader.stop)
        reader.start()
        sender = Sender(ns)
        stack.callback(sender.close)
        admin = login(base, "admin", PASSWORD)
        add_user(base, admin, GATEWAY_UID, "gateway test password")
        built = Env(base, admin, sender, reader.url, node_headers(tmp / "gateway", reader.url))
        ready = built.url().replace("/stream/", "/range/")
        wait_for(
            "the gateway's first cluster state",
            lambda: (
                httpx.get(ready, headers=admin, params={"skip_prev": 1}).status_code in (200, 204)
                or None
            ),
            timeout=DEADLINE,
        )
        yield built


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Follow:
    """An SSE follow read in a thread, kept as the raw event blocks it received (comments
    left out), and its final `access-ended` data if any."""

    url: str
    headers: Mapping[str, str]
    blocks: list[bytes] = field(default_factory=list)
    final: str | None = None
    response_headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._client = httpx.Client(timeout=httpx.Timeout(10.0, read=None))
        request = self._client.build_request(
            "GET", self.url, headers={**self.headers, "Accept": "text/event-stream"}
        )
        self._response = self._client.send(request, stream=True)
        assert self._response.status_code == 200, self._response.read()
        self.response_headers = dict(self._response.headers)
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        pending = b""
        try:
            for chunk in self._response.iter_raw():
                pending += chunk
                *whole, pending = pending.split(b"\n\n")
                for block in whole:
                    if block.startswith(b"event: access-ended"):
                        self.final = block.split(b"data: ", 1)[1].decode()
                    elif not block.startswith(b":"):
                        self.blocks.append(block + b"\n\n")
        except httpx.HTTPError:
            pass
        finally:
            self.done.set()

    def messages(self) -> list[str]:
        return [b.split(b'"MESSAGE":"', 1)[1].split(b'"', 1)[0].decode() for b in self.blocks]

    def has(self, count: int) -> None:
        wait_for(f"{count} events", lambda: len(self.blocks) >= count or None, timeout=DEADLINE)

    def ids(self) -> list[str]:
        return [b.split(b"\n", 1)[0].removeprefix(b"id: ").decode() for b in self.blocks]

    def close(self) -> None:
        # The reading thread blocks in recv until the next heartbeat: shutting the socket down
        # wakes it now (closing the response from this thread would not).
        sock = self._response.extensions["network_stream"].get_extra_info("socket")
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        self._response.close()
        self._client.close()
        self._thread.join(10)


@contextlib.contextmanager
def following(url: str, headers: Mapping[str, str]) -> Iterator[Follow]:
    follow = Follow(url, headers)
    try:
        yield follow
    finally:
        follow.close()


def _run() -> str:
    return uuid.uuid4().hex[:12]


def test_callers_with_the_same_follow_share_one_upstream_and_get_the_same_bytes(
    env: Env,
) -> None:
    run = _run()
    query = f"?skip_prev=1&filter={RUN}:{run}"
    alone = f"{env.reader}/v1/stream/{query}"  # the node itself, as the gateway asks it
    with (
        following(env.url(query), env.admin) as a,
        following(env.url(query), env.admin) as b,
        following(alone, env.node) as direct,
    ):
        env.settled(shared=1, followers=2)  # the share's upstream and the direct follow
        for i in range(5):
            env.write(run, f"line {i}")
        a.has(5)
        b.has(5)
        direct.has(5)
        assert a.messages() == [f"line {i}" for i in range(5)]
        assert a.blocks == b.blocks == direct.blocks
    env.settled(shared=0, followers=0)  # the last one left: the upstream closed


def test_follows_that_differ_do_not_share(env: Env) -> None:
    run = _run()
    one = env.url(f"?skip_prev=1&filter={RUN}:{run}")
    other = env.url(f"?skip_prev=1&filter={RUN}:{run}&filter=SYSLOG_IDENTIFIER:shared-test")
    with following(one, env.admin) as a, following(other, env.admin) as b:
        env.settled(shared=2, followers=2)
        env.write(run, "to both")
        a.has(1)
        b.has(1)
    env.settled(shared=0, followers=0)


def test_a_late_caller_with_last_event_id_gets_exactly_the_rest(env: Env) -> None:
    run = _run()
    url = env.url(f"?skip_prev=1&filter={RUN}:{run}")
    with following(url, env.admin) as a:
        for i in range(5):
            env.write(run, f"line {i}")
        a.has(5)
        after = a.ids()[1]
        with following(url, {**env.admin, "Last-Event-ID": after}) as b:
            b.has(3)
            assert b.blocks == a.blocks[2:]
            assert b.response_headers["x-journal-skip-prev"] == "0"
            env.settled(shared=1, followers=1)  # joined the share, no upstream of its own
            env.write(run, "line 5")
            a.has(6)
            b.has(4)
            assert b.blocks == a.blocks[2:]


def test_a_late_caller_of_the_last_n_gets_what_the_node_would_send(env: Env) -> None:
    run = _run()
    url = env.url(f"?skip_prev=2&filter={RUN}:{run}")
    for i in range(3):
        env.write(run, f"before {i}")
    env.sender.sync()
    with following(url, env.admin) as a:
        a.has(2)
        env.write(run, "line 3")
        a.has(3)
        with following(url, env.admin) as b:
            b.has(2)
            assert b.messages() == ["before 2", "line 3"]
            assert b.blocks == a.blocks[-2:]
            env.settled(shared=1, followers=1)


def test_revoking_one_caller_ends_only_that_caller(env: Env) -> None:
    run = _run()
    url = env.url(f"?skip_prev=1&filter={RUN}:{run}")
    users = {}
    for name in ("one", "two"):
        uid = f"shared-{name}-{run}"
        users[name] = (uid, add_user(env.base, env.admin, uid, f"{uid} password"))
        grant(env.base, env.admin, SYSTEM_LOGS_RID, uid)
    with following(url, users["one"][1]) as one, following(url, users["two"][1]) as two:
        env.settled(shared=1, followers=1)
        acl = f"{env.base}/acs/api/v1/acls/{SYSTEM_LOGS_RID}/users/{users['one'][0]}/read"
        assert httpx.delete(acl, headers=env.admin).status_code == 204
        assert one.done.wait(DEADLINE)
        assert one.final == ACCESS_REVOKED
        env.write(run, "after the revocation")
        two.has(1)
        assert two.final is None
        assert not two.done.is_set()
        assert env.shared() == 1


def test_a_stalled_follower_does_not_delay_the_others(env: Env) -> None:
    run = _run()
    path = f"/system/v1/agent/{AGENT}/logs/v1/stream/?skip_prev=1&filter={RUN}:{run}"
    token = env.admin["Authorization"]
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills at once
    stalled.connect((GATEWAY_HOST, int(env.base.rsplit(":", 1)[1])))
    stalled.sendall(
        f"GET {path} HTTP/1.1\r\nHost: {GATEWAY_HOST}\r\nAuthorization: {token}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    try:
        assert stalled.recv(12) == b"HTTP/1.1 200"
        before = metric(env.base, STALLED, env.admin)
        with following(env.base + path, env.admin) as live:
            env.settled(shared=1, followers=1)
            big = "x" * 8000
            lines = 1000  # 8 MB: more than every buffer between the gateway and the client
            for i in range(lines):
                env.write(run, f"{i} {big}")
            live.has(lines)  # while the other reads nothing
            assert [m.split(" ", 1)[0] for m in live.messages()] == [str(i) for i in range(lines)]
            wait_for(
                "the stalled follower cut off",
                lambda: metric(env.base, STALLED, env.admin) > before or None,
                timeout=DEADLINE,
            )
            assert env.shared() == 1
            assert not live.done.is_set()
        stalled.settimeout(DEADLINE)
        while stalled.recv(1 << 20):  # what it had been sent, then the end
            pass
    finally:
        stalled.close()
    env.settled(shared=0, followers=0)
