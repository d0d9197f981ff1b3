"""`/system/v1/leader/marathon/logs/…` end to end (issue 18): the real dcos CLI 0.6.1 and
httpx against a real gateway over two simulated Mesos masters and an agent on
127.0.0.130-132, each with its own journald namespace and node reader.

The gateway is configured with both masters by address, so both are masters it knows; master
0 leads Mesos throughout. Marathon's framework registers from master 0, then from master 1 (a
Marathon leader election), then from an address the state does not know, then disconnects.
Each master's journal holds `dcos-marathon.service` lines naming their own host, so what the
CLI prints says whose journal it read.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from app.devcluster.journald import JournaldNamespace
from app.devcluster.mesos import MesosSimulator, SimAgent, SimCluster, SimFramework
from tests.conftest import free_port, journald_available, new_namespace_name
from tests.gateway.support import add_user, login, node_readers, port_free_on, wait_for
from tests.support.gateway import gateway
from tests.support.journal import Sender

pytestmark = pytest.mark.skipif(not journald_available(), reason="needs root and journald")

M0, M1, A0, GATEWAY, NOWHERE = (f"127.0.0.{n}" for n in (130, 131, 132, 133, 139))
MASTER_ID = "4a1b2c3d-0000-4000-8000-0000000018aa"
AGENT = f"{MASTER_ID}-S0"
MARATHON = f"{MASTER_ID}-0000"
UNIT = "dcos-marathon.service"
PASSWORD = "admin password for the marathon leader tests"
CLI = Path("/tmp/dcos-cli/bin/dcos")
COMMAND_TIMEOUT = 60.0
ROUTE = f"/system/v1/leader/marathon/logs/v2/component/{UNIT}"
LINES = 5  # per master journal


@dataclass
class Env:
    base: str
    sim: MesosSimulator
    admin: dict[str, str]
    nobody: dict[str, str]
    home: Path
    reader_port: int

    def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.get(
            self.base + path,
            headers=self.admin if headers is None else headers,
            timeout=COMMAND_TIMEOUT,
            follow_redirects=False,
        )


def marathon_line(host: str, i: int) -> str:
    return f"marathon on {host}: health check of /prod/web passed, round {i}"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    if not CLI.exists():
        pytest.skip(f"the dcos CLI 0.6.1 is not installed at {CLI}")
    tmp = tmp_path_factory.mktemp("marathon-leader")
    cluster = SimCluster(master_id=MASTER_ID)
    cluster.agents = [SimAgent(AGENT, A0)]
    cluster.frameworks = [SimFramework(MARATHON, "marathon", scheduler_host=M0)]
    hosts = (M0, M1, A0)
    port = port_free_on(hosts)
    with contextlib.ExitStack() as stack:
        namespaces = {
            h: stack.enter_context(JournaldNamespace(new_namespace_name())) for h in hosts
        }
        sim = stack.enter_context(
            MesosSimulator(cluster, masters=[(M0, free_port(M0)), (M1, free_port(M1))])
        )
        base = stack.enter_context(
            gateway(
                tmp / "gateway",
                *(f"--mesos={url}" for url in sim.urls),
                f"--reader-port={port}",
                password=PASSWORD,
                host=GATEWAY,
                extra_env={"LOGWAY_GATEWAY_MESOS_POLL_PERIOD": "0.25"},
                log_path=tmp / "gateway.log",
            )
        )
        jwks = f"{base}/acs/api/v1/auth/jwks"
        stack.enter_context(node_readers({h: ns.name for h, ns in namespaces.items()}, port, jwks))
        for host, ns in namespaces.items():
            sender = Sender(ns)
            stack.callback(sender.close)
            for i in range(LINES):
                # The agent's journal has Marathon-like lines too: they must never show.
                sender.send({"MESSAGE": marathon_line(host, i), "UNIT": UNIT})
            sender.sync()
        admin = login(base, "admin", PASSWORD)
        nobody = add_user(base, admin, "marathon-nobody", "nobody's password")
        home = tmp / "home"
        home.mkdir()
        config = home / "dcos.toml"
        token = admin["Authorization"].removeprefix("token=")
        config.write_text(
            f'[core]\ndcos_url = "{base}"\ndcos_acs_token = "{token}"\nreporting = false\n'
        )
        config.chmod(0o600)
        yield Env(base, sim, admin, nobody, home, port)


@pytest.fixture(autouse=True)
def marathon_on_master_0(env: Env) -> Iterator[None]:
    yield
    env.sim.reregister_framework(MARATHON, M0)
    wait_for("Marathon back on master 0", lambda: True if answered_by(env) == M0 else None)


def answered_by(env: Env) -> str | None:
    """Whose Marathon lines the route serves (None: not a 200)."""
    answer = env.get(ROUTE)
    if answer.status_code != 200:
        return None
    for host in (M0, M1, A0):
        if f"marathon on {host}:" in answer.text:
            return host
    raise AssertionError(answer.text)


def dcos(env: Env, *args: str) -> subprocess.CompletedProcess[str]:
    passed = {k: v for k, v in os.environ.items() if k in ("PATH", "TZ")}
    cli_env = passed | {
        "HOME": str(env.home),
        "DCOS_DIR": str(env.home / "dcos"),
        "DCOS_CONFIG": str(env.home / "dcos.toml"),
    }
    return subprocess.run(
        [str(CLI), *args], env=cli_env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT
    )


def marathon_log(env: Env, lines: int = 3) -> subprocess.CompletedProcess[str]:
    return dcos(env, "node", "log", "--leader", "--component=dcos-marathon", f"--lines={lines}")


def test_the_cli_reads_marathons_unit_on_the_node_it_leads_from(env: Env) -> None:
    run = marathon_log(env)
    assert run.returncode == 0, run.stderr
    printed = run.stdout.splitlines()
    assert len(printed) == 3, printed
    wanted = [marathon_line(M0, i) for i in range(LINES - 3, LINES)]
    assert [line.split(": ", 1)[1] for line in printed] == wanted


def test_a_marathon_failover_moves_the_route(env: Env) -> None:
    # Mesos still leads from master 0; Marathon now leads from master 1, which the gateway
    # knows as one of the masters it polls.
    env.sim.reregister_framework(MARATHON, M1, webui_url=f"http://{M1}:8080")
    wait_for("the route on master 1", lambda: True if answered_by(env) == M1 else None)
    run = marathon_log(env, lines=1)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[0].endswith(marathon_line(M1, LINES - 1)), run.stdout


class Listener:
    """A TCP listener that counts connections: nothing may ever be proxied to it."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_server((host, port))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


def test_an_unknown_scheduler_address_is_refused_never_proxied(env: Env) -> None:
    listener = Listener(NOWHERE, env.reader_port)  # where a node reader there would be
    try:
        env.sim.reregister_framework(MARATHON, NOWHERE)
        answer = wait_for(
            "the refusal",
            lambda: r if (r := env.get(ROUTE)).status_code == 503 else None,
        )
        assert f"registered from '{NOWHERE}'" in answer.text, answer.text
        assert "no master or agent of this cluster" in answer.text
        run = marathon_log(env)
        assert run.returncode == 1
        assert "HTTP 503" in run.stderr, run.stderr
        assert listener.connections == 0
    finally:
        listener.close()


def test_an_agent_is_a_known_node(env: Env) -> None:
    env.sim.reregister_framework(MARATHON, A0)
    wait_for("the route on the agent", lambda: True if answered_by(env) == A0 else None)


def test_no_active_marathon_is_503_as_admin_router_said(env: Env) -> None:
    env.sim.disconnect_framework(MARATHON)
    answer = wait_for("the 503", lambda: r if (r := env.get(ROUTE)).status_code == 503 else None)
    assert "marathon leader is unknown" in answer.text
    assert "no active `marathon` framework" in answer.text


def test_authorization_comes_first(env: Env) -> None:
    assert env.get(ROUTE, headers={}).status_code == 401
    refused = env.get(ROUTE, headers=env.nobody)
    assert refused.status_code == 403
    assert "dcos:adminrouter:ops:system-logs" in refused.text
    env.sim.disconnect_framework(MARATHON)
    wait_for("the 503", lambda: True if env.get(ROUTE).status_code == 503 else None)
    assert env.get(ROUTE, headers=env.nobody).status_code == 403  # 403 before 503
