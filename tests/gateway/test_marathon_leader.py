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
import json
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
from app.devcluster.mesos import MesosSimulator, SimAgent, SimCluster, SimFramework, SimTask
from tests.conftest import free_port, journald_available, new_namespace_name
from tests.gateway.support import add_user, login, node_readers, port_free_on
from tests.support.gateway import gateway
from tests.support.journal import Sender
from tests.support.wait import wait_for

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
WEB_TASK, WEB_CONTAINER = "prod_web.1f0c6e1a-0000-4000-8000-000000000001", "c-web-18"


@dataclass
class Env:
    base: str
    sim: MesosSimulator
    admin: dict[str, str]
    nobody: dict[str, str]
    home: Path
    reader_port: int
    senders: dict[str, Sender]

    def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.get(
            self.base + path,
            headers=self.admin if headers is None else headers,
            timeout=COMMAND_TIMEOUT,
            follow_redirects=False,
        )


def marathon_line(host: str, i: int) -> str:
    return f"marathon on {host}: health check of /prod/web passed, round {i}"


def web_line(message: str) -> dict[str, str]:
    """A line of the /prod/web task, with the fields `logway ship` writes."""
    return {
        "MESSAGE": message,
        "AGENT_ID": AGENT,
        "FRAMEWORK_ID": MARATHON,
        "EXECUTOR_ID": WEB_TASK,
        "CONTAINER_ID": WEB_CONTAINER,
        "TASK_ID": WEB_TASK,
        "STREAM": "STDOUT",
    }


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    if not CLI.exists():
        pytest.skip(f"the dcos CLI 0.6.1 is not installed at {CLI}")
    tmp = tmp_path_factory.mktemp("marathon-leader")
    cluster = SimCluster(master_id=MASTER_ID)
    cluster.agents = [SimAgent(AGENT, A0)]
    cluster.frameworks = [SimFramework(MARATHON, "marathon", scheduler_host=M0)]
    # /prod/web (from Marathon's task id), one instance on the agent.
    cluster.tasks = [SimTask(WEB_TASK, "web.prod", MARATHON, AGENT, containers=(WEB_CONTAINER,))]
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
        senders = {}
        for host, ns in namespaces.items():
            sender = senders[host] = Sender(ns)
            stack.callback(sender.close)
            for i in range(LINES):
                # The agent's journal has Marathon-like lines too: they must never show.
                sender.send({"MESSAGE": marathon_line(host, i), "UNIT": UNIT})
            sender.sync()
        for i in range(3):
            senders[A0].send(web_line(f"web line {i}"))
        senders[A0].sync()
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
        yield Env(base, sim, admin, nobody, home, port, senders)


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


class Events:
    """An SSE stream's events (data only), read on a thread as they come."""

    def __init__(self, env: Env, path: str) -> None:
        self.messages: list[str] = []
        self._stop = threading.Event()
        self._client = httpx.Client(timeout=httpx.Timeout(COMMAND_TIMEOUT))
        headers = {**env.admin, "Accept": "text/event-stream"}
        self._stream = self._client.stream("GET", env.base + path, headers=headers)
        self.response = self._stream.__enter__()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        with contextlib.suppress(httpx.HTTPError):
            for line in self.response.iter_lines():
                if line.startswith("data: "):
                    fields = json.loads(line.removeprefix("data: "))["fields"]
                    self.messages.append(str(fields.get("MESSAGE")))

    def wait(self, message: str) -> None:
        wait_for(
            f"{message!r} in {self.messages}", lambda: True if message in self.messages else None
        )

    def close(self) -> None:
        self._stream.__exit__(None, None, None)
        self._client.close()
        self._thread.join(10)


def test_a_merged_stream_with_scheduler_follows_marathon_to_its_new_node(env: Env) -> None:
    events = Events(env, "/system/v1/logs/v1/app/prod/stream/?include=scheduler")
    try:
        assert events.response.status_code == 200
        events.wait(marathon_line(M0, LINES - 1))
        events.wait("web line 2")
        env.sim.reregister_framework(MARATHON, M1)
        # The stream's next plan moves Marathon's source to master 1, from its place's time.
        events.wait(marathon_line(M1, LINES - 1))
        stale, moved = marathon_line(M0, 99), marathon_line(M1, 100)
        env.senders[M0].send({"MESSAGE": stale, "UNIT": UNIT})
        env.senders[M1].send({"MESSAGE": moved, "UNIT": UNIT})
        env.senders[A0].send(web_line("web line 3"))
        events.wait(moved)
        events.wait("web line 3")
        shown = list(events.messages)
        assert stale not in shown
        assert not any(f"marathon on {A0}" in m for m in shown)  # the agent's are no app's
        assert len(shown) == len(set(shown)), shown  # nothing twice
    finally:
        events.close()


def test_include_scheduler_needs_the_marathon_leaders_journal_and_a_known_leader(
    env: Env,
) -> None:
    path = "/system/v1/logs/v1/app/prod/range/?include=scheduler&skip_prev=20"
    both = env.get(path, headers={**env.admin, "Accept": "application/json"})
    assert both.status_code == 200, both.text
    messages = [json.loads(line)["fields"]["MESSAGE"] for line in both.text.splitlines()]
    assert marathon_line(M0, LINES - 1) in messages
    assert "web line 0" in messages
    counted = env.get("/system/v1/logs/v1/app/prod/count/?include=scheduler")
    assert counted.status_code == 400, counted.text  # a reader cannot pick Marathon's lines
    bogus = env.get("/system/v1/logs/v1/app/prod/range/?include=everything")
    assert bogus.status_code == 400
    assert "`include` takes `scheduler`" in bogus.text
    refused = env.get(path, headers=env.nobody)
    assert refused.status_code == 403
    assert "Marathon leader's journal" in refused.text
    env.sim.reregister_framework(MARATHON, NOWHERE)
    wait_for("the refusal", lambda: True if env.get(ROUTE).status_code == 503 else None)
    unknown = env.get(path)
    assert unknown.status_code == 503, unknown.text
    assert f"registered from '{NOWHERE}'" in unknown.text
    assert env.get(path.replace("include=scheduler&", "")).status_code == 200  # only if asked
