"""Gateway worker processes (issue 17, app/core/workers.py), end to end: a real `logway
gateway --workers 2` (embedded IAM on SQLite), one `logway node` over a journald namespace on
127.0.73.1, the Mesos simulator on .2, the gateway on .3. Connections spread over both
workers; a grant revoked through either ends the caller's streams in both; SIGTERM stops
every worker.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.authz.access import ACCESS_REVOKED
from app.authz.route_table import SYSTEM_LOGS_RID
from app.devcluster.journald import JournaldNamespace
from app.devcluster.mesos import MesosSimulator, SimAgent, SimCluster
from tests.conftest import journald_available, new_namespace_name
from tests.gateway.support import GATEWAY_UID, Reader, add_user, grant, login
from tests.gateway.test_shared_follows import Follow
from tests.support.gateway import gateway as support_gateway
from tests.support.wait import wait_for

pytestmark = pytest.mark.skipif(not journald_available(), reason="needs root and journald")

PASSWORD = "admin password for worker tests"
HOST, MESOS_HOST, GATEWAY_HOST = "127.0.73.1", "127.0.73.2", "127.0.73.3"
MASTER_ID = "6a1e5c0d-0000-4000-8000-0000000f0073"
AGENT = f"{MASTER_ID}-S0"
DEADLINE = 30.0
MAX_FOLLOWS = 24  # opened until both workers hold one (each lands on one at random)


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _gateway_pid(port: int) -> int:
    """The supervising `logway gateway` process listening on `port`."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if b"gateway" in argv and f"--port={port}".encode() in argv:
                children = (proc / "task" / proc.name / "children").read_text().split()
                if children:  # the parent: its workers are its children
                    return int(proc.name)
    raise AssertionError(f"no gateway with workers on port {port}")


def _workers(parent: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{parent}/task/{parent}/children").read_text().split()]


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    return inodes


def _owner(workers: list[int], client_port: int) -> int | None:
    """The worker holding the server side of the connection from `client_port`."""
    remote = f":{client_port:04X}"
    inodes = {pid: _socket_inodes(pid) for pid in workers}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[2].endswith(remote):
            for pid, held in inodes.items():
                if fields[9] in held:
                    return pid
    return None


def _client_port(follow: Follow) -> int:
    sock = follow._response.extensions["network_stream"].get_extra_info("socket")
    port: int = sock.getsockname()[1]
    return port


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("workers")
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
                "--workers=2",
                password=PASSWORD,
                host=GATEWAY_HOST,
            )
        )
        reader = Reader(ns.name, HOST, port, f"{base}/acs/api/v1/auth/jwks", tmp / "reader.log")
        stack.callback(reader.stop)
        reader.start()
        admin = login(base, "admin", PASSWORD)
        add_user(base, admin, GATEWAY_UID, "gateway test password")
        yield base, admin


def test_a_grant_revoked_through_one_worker_ends_the_streams_in_every_worker(
    gateway: tuple[str, dict[str, str]],
) -> None:
    base, admin = gateway
    parent = _gateway_pid(int(base.rsplit(":", 1)[1]))
    workers = _workers(parent)
    assert len(workers) == 2
    uid = f"worker-{uuid.uuid4().hex[:8]}"
    user = add_user(base, admin, uid, f"{uid} password")
    grant(base, admin, SYSTEM_LOGS_RID, uid)
    url = f"{base}/system/v1/agent/{AGENT}/logs/v1/stream/?skip_prev=1"
    wait_for(
        "the gateway's first cluster state",
        lambda: (
            httpx.get(url.replace("/stream/", "/range/"), headers=admin).status_code in (200, 204)
            or None
        ),
        timeout=DEADLINE,
    )
    with contextlib.ExitStack() as stack:
        follows: list[Follow] = []
        held: set[int | None] = set()
        while len(follows) < MAX_FOLLOWS and not set(workers) <= held:
            follow = Follow(url, user)
            stack.callback(follow.close)
            follows.append(follow)
            held.add(_owner(workers, _client_port(follow)))
        assert set(workers) <= held, f"{len(follows)} follows all on one worker"
        acl = f"{base}/acs/api/v1/acls/{SYSTEM_LOGS_RID}/users/{uid}/read"
        assert httpx.delete(acl, headers=admin).status_code == 204
        for follow in follows:
            assert follow.done.wait(DEADLINE)
            assert follow.final == ACCESS_REVOKED


def test_sigterm_stops_every_worker(tmp_path: Path) -> None:
    host = "127.0.73.4"
    with support_gateway(tmp_path / "gateway", "--workers=2", password=PASSWORD, host=host) as base:
        parent = _gateway_pid(int(base.rsplit(":", 1)[1]))
        workers = _workers(parent)
        assert len(workers) == 2
        os.kill(parent, signal.SIGTERM)
        wait_for(
            "every worker gone",
            lambda: not any(Path(f"/proc/{w}").exists() for w in workers) or None,
            timeout=DEADLINE,
        )
