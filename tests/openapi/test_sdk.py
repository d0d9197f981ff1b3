"""A client generated from openapi/gateway.json by openapi-python-client (into a temporary
directory, never committed), against a real gateway: a Mesos simulator, node readers on
127.0.0.61 (master), .62 and .63 (agents) over real journald namespaces. It logs in with its
own login call, reads ranges with its own range calls, and follows a stream with its own
configured httpx client (the generated functions read whole bodies, so cannot follow).
And every documented operation answers 401 and 403 exactly where the document says."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from app.devcluster.journald import JournaldNamespace
from app.devcluster.mesos import MesosSimulator, SimAgent, SimCluster, SimFramework, SimTask
from app.openapi.routes import sample_path
from tests.conftest import journald_available, new_namespace_name
from tests.gateway.support import add_user, gateway, login, node_readers, port_free_on
from tests.support.journal import Sender

pytestmark = pytest.mark.skipif(
    not journald_available(), reason="needs root and /lib/systemd/systemd-journald"
)

OPENAPI = Path(__file__).resolve().parents[2] / "openapi"
GENERATOR = Path(sys.executable).parent / "openapi-python-client"
PACKAGE = "logway_client"  # openapi/sdk-config.yaml
PASSWORD = "admin password for the sdk test"
MASTER, AGENTS = "127.0.0.61", ("127.0.0.62", "127.0.0.63")
MASTER_ID = "0a9e5d2c-0000-4000-8000-0000000005d1"
S0, S1 = f"{MASTER_ID}-S0", f"{MASTER_ID}-S1"
MARATHON = f"{MASTER_ID}-0000"
TASK_ID, TASK_NAME = "dev_sdk.instance-1", "sdk.dev"
EXECUTOR, CONTAINER = "dev_sdk.exec", "c-sdk-1"
STREAM_TIMEOUT = 20.0


@dataclass
class Env:
    base: str
    senders: dict[str, Sender]  # by node: "master", S0, S1
    nobody: dict[str, str]  # the headers of a user with no permission

    def write(self, node: str, message: str, **fields: str) -> None:
        self.senders[node].send({"MESSAGE": message, "SYSLOG_IDENTIFIER": "sdktest", **fields})
        self.senders[node].sync()

    def task_line(self, message: str, stream: str = "STDOUT") -> None:
        self.write(
            S0,
            message,
            FRAMEWORK_ID=MARATHON,
            EXECUTOR_ID=EXECUTOR,
            CONTAINER_ID=CONTAINER,
            TASK_ID=TASK_ID,
            STREAM=stream,
        )


def sim_cluster() -> SimCluster:
    cluster = SimCluster(master_id=MASTER_ID)
    cluster.agents = [SimAgent(S0, AGENTS[0]), SimAgent(S1, AGENTS[1])]
    cluster.frameworks = [SimFramework(MARATHON, "marathon")]
    cluster.tasks = [
        SimTask(
            TASK_ID,
            TASK_NAME,
            MARATHON,
            S0,
            executor_id=EXECUTOR,
            containers=(CONTAINER,),
            labels={"DCOS_SPACE": "/dev/sdk"},
        )
    ]
    return cluster


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    hosts = (MASTER, *AGENTS)
    port = port_free_on(hosts)
    with (
        JournaldNamespace(new_namespace_name()) as master_ns,
        JournaldNamespace(new_namespace_name()) as ns0,
        JournaldNamespace(new_namespace_name()) as ns1,
        MesosSimulator(sim_cluster(), masters=[(MASTER, 0)]) as sim,
        gateway(
            tmp_path_factory.mktemp("gw"),
            password=PASSWORD,
            mesos=sim.urls[0],
            reader_port=port,
            host=MASTER,
        ) as base,
        node_readers(
            {MASTER: master_ns.name, AGENTS[0]: ns0.name, AGENTS[1]: ns1.name},
            port,
            f"{base}/acs/api/v1/auth/jwks",
        ),
    ):
        senders = {"master": Sender(master_ns), S0: Sender(ns0), S1: Sender(ns1)}
        try:
            admin = login(base, "admin", PASSWORD)
            nobody = add_user(base, admin, "sdk-nobody", "a password with no grants")
            yield Env(base, senders, nobody)
        finally:
            for sender in senders.values():
                sender.close()


@pytest.fixture(scope="module")
def sdk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The generated package, imported from its temporary directory."""
    assert GENERATOR.exists(), f"{GENERATOR} missing: `make install` (a dev dependency)"
    out = tmp_path_factory.mktemp("sdk")
    generated = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            f"--path={OPENAPI / 'gateway.json'}",
            f"--config={OPENAPI / 'sdk-config.yaml'}",
            f"--output-path={out / PACKAGE}",
            "--meta=none",
            "--fail-on-warning",
        ],
        cwd=out,
        # The generator formats its output with ruff, found on PATH.
        env={**os.environ, "PATH": f"{GENERATOR.parent}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(out))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def endpoint(tag: str, operation_id: str) -> Any:
    """A generated endpoint module: `sync`, `sync_detailed` and their async twins."""
    return importlib.import_module(f"{PACKAGE}.api.{tag}.{operation_id}")


@pytest.fixture(scope="module")
def token(env: Env, sdk: ModuleType) -> str:
    """The admin's token, from the generated client's own login call."""
    models = importlib.import_module(f"{PACKAGE}.models")
    with sdk.Client(base_url=env.base, raise_on_unexpected_status=True) as anonymous:
        body = models.LoginBody(uid="admin", password=PASSWORD)
        answer = endpoint("iam", "login").sync(client=anonymous, body=body)
    assert isinstance(answer, models.AuthToken)
    token: str = answer.token
    return token


def test_the_generated_login_refuses_a_wrong_password(env: Env, sdk: ModuleType) -> None:
    models = importlib.import_module(f"{PACKAGE}.models")
    with sdk.Client(base_url=env.base, raise_on_unexpected_status=True) as anonymous:
        body = models.LoginBody(uid="admin", password="not the password")
        refused = endpoint("iam", "login").sync_detailed(client=anonymous, body=body)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "acsjwt"
    assert isinstance(refused.parsed, str)
    assert refused.parsed.endswith("\n")


def test_the_generated_client_reads_node_ranges(env: Env, sdk: ModuleType, token: str) -> None:
    models = importlib.import_module(f"{PACKAGE}.models")
    marker = uuid.uuid4().hex
    env.write("master", f"master {marker}")
    for i in range(3):
        env.write(S1, f"agent {marker} {i}", SDK_MARK=marker)
    expected = [f"agent {marker} {i}" for i in range(3)]
    by_mark = [f"SDK_MARK:{marker}"]
    with sdk.AuthenticatedClient(base_url=env.base, token=token) as client:
        master = endpoint("logs", "master_v1_range").sync_detailed(client=client, skip_prev=5)
        assert master.status_code == 200, master.content
        assert f"master {marker}" in master.parsed
        agent = endpoint("logs", "agent_v1_range").sync(agent_id=S1, client=client, filter_=by_mark)
        assert [line.split(": ", 1)[1] for line in agent.splitlines()] == expected
        unknown = endpoint("logs", "agent_v1_range").sync_detailed(agent_id="S9", client=client)
        assert unknown.status_code == 404
    # NDJSON: Accept: application/json, each line one JournalEntry of the generated models.
    headers = {"Accept": "application/json"}
    with sdk.AuthenticatedClient(base_url=env.base, token=token, headers=headers) as client:
        body = endpoint("logs", "agent_v1_range").sync(agent_id=S1, client=client, filter_=by_mark)
    entries = [models.JournalEntry.from_dict(json.loads(line)) for line in body.splitlines()]
    assert [e.fields["MESSAGE"] for e in entries] == expected
    assert all(e.cursor.startswith("s=") for e in entries)


def test_the_generated_client_reads_a_tasks_files(env: Env, sdk: ModuleType, token: str) -> None:
    marker = uuid.uuid4().hex
    env.task_line(f"out {marker}")
    env.task_line(f"err {marker}", stream="STDERR")
    with sdk.AuthenticatedClient(base_url=env.base, token=token) as client:
        for task in (TASK_NAME, TASK_ID):
            stdout = endpoint("logs", "task_stdout").sync(
                task=task, client=client, cursor="END", skip=-1
            )
            assert stdout == f"out {marker}\n"  # the line as the task wrote it
            stderr = endpoint("logs", "task_stderr").sync(
                task=task, client=client, cursor="END", skip=-1
            )
            assert stderr == f"err {marker}\n"
        missing = endpoint("logs", "task_stdout").sync_detailed(task="no-such-task", client=client)
        assert missing.status_code == 404


def test_the_generated_clients_httpx_client_follows_a_stream(
    env: Env, sdk: ModuleType, token: str
) -> None:
    """The generated functions read whole bodies; following is done with the client's own
    configured httpx client, which carries the token (here in DC/OS's `token=<JWT>` form:
    with `prefix` the generator would put a space after it)."""
    models = importlib.import_module(f"{PACKAGE}.models")
    marker = uuid.uuid4().hex
    path = f"/system/v1/logs/v2/task/{TASK_NAME}/file/stdout"
    sse = {"Accept": "text/event-stream"}
    events = []
    with sdk.AuthenticatedClient(base_url=env.base, token=f"token={token}", prefix="") as client:
        http = client.get_httpx_client()
        timeout = httpx.Timeout(STREAM_TIMEOUT)
        with http.stream(
            "GET", path, params={"cursor": "END"}, headers=sse, timeout=timeout
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            env.task_line(f"followed {marker} 0")
            env.task_line(f"followed {marker} 1")
            for event in sse_events(response.iter_lines()):
                data = models.TaskFileEvent.from_dict(json.loads(event["data"]))
                events.append((event["id"], data.fields.message))
                if data.fields.message == f"followed {marker} 1":
                    break
        assert [m for _, m in events][-2:] == [f"followed {marker} 0", f"followed {marker} 1"]
        # Resuming with Last-Event-ID: the next event is the one after it, none repeated.
        resume = {**sse, "Last-Event-ID": events[-2][0]}
        with http.stream("GET", path, headers=resume, timeout=timeout) as response:
            event = next(sse_events(response.iter_lines()))
    assert json.loads(event["data"])["fields"]["MESSAGE"] == f"followed {marker} 1"
    assert event["id"] == events[-1][0]


def sse_events(lines: Iterator[str]) -> Iterator[dict[str, str]]:
    """Events of an SSE body (comments skipped), until a deadline."""
    deadline = time.monotonic() + STREAM_TIMEOUT
    event: dict[str, str] = {}
    for line in lines:
        assert time.monotonic() < deadline, "timed out following the stream"
        if not line:
            if "data" in event:
                yield event
            event = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            event[name] = value.removeprefix(" ")
    pytest.fail("the stream ended")


def test_every_operation_answers_401_and_403_as_documented(env: Env) -> None:
    """Anonymous: 401 exactly on the secured operations. A caller with no permission: 403
    exactly on those documenting it (permission checks come before anything is looked up)."""
    document = json.loads((OPENAPI / "gateway.json").read_text())
    checked = 0
    with httpx.Client(base_url=env.base, timeout=15) as http:
        for path, ops in document["paths"].items():
            url = sample_path(path)
            for method, op in ops.items():
                anonymous = http.request(method.upper(), url)
                secured = op["security"] != []
                assert (anonymous.status_code == 401) == secured, (method, path, anonymous)
                if secured:
                    assert anonymous.headers["www-authenticate"] == "acsjwt"
                    denied = http.request(method.upper(), url, headers=env.nobody)
                    documented = "403" in op["responses"]
                    assert (denied.status_code == 403) == documented, (method, path, denied)
                checked += 1
    assert checked >= 60
