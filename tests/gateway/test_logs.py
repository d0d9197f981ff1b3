"""The gateway's log routes end to end: a real `logway gateway` process over a simulated
Mesos master, real node readers on 127.0.0.2/127.0.0.3 over real journald namespaces that
trust only the gateway's service uid, and users and grants made through the IAM API."""

from __future__ import annotations

import base64
import http.server
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from app.devcluster.journald import JournaldNamespace
from app.devcluster.mesos import MesosSimulator, SimAgent, SimCluster, SimFramework, SimTask
from tests.conftest import journald_available, new_namespace_name
from tests.gateway.support import (
    GATEWAY_UID,
    add_user,
    gateway,
    grant,
    login,
    node_headers,
    node_readers,
    port_free_on,
    signed_headers,
)
from tests.support.journal import Sender
from tests.support.wait import wait_for

PASSWORD = "admin password for tests"
HOSTS = ("127.0.0.2", "127.0.0.3")
ROGUE_HOST = "127.0.0.140"  # an agent registration no node reader stands behind
MASTER_ID = "7f3c1c1e-0000-4000-8000-000000000001"
S0, S1 = f"{MASTER_ID}-S0", f"{MASTER_ID}-S1"
MARATHON = f"{MASTER_ID}-0000"
DEV = ("dev_api.exec", "c-dev-1")  # executor id, container id
DEVOPS = ("devops_api.exec", "c-devops-1")
METRONOME = f"{MASTER_ID}-0001"
BATCH_TASK = "nightly.run-1"  # a command-executor task: its executor id is its own id
BATCH = (BATCH_TASK, "c-batch-1")
POD_TASK = "dev_pod.instance-7.web"
POD = ("instance-dev_pod.instance-7", "c-pod-outer", "c-pod-web")  # executor, outer, inner

pytestmark = pytest.mark.skipif(
    not journald_available(), reason="needs root and /lib/systemd/systemd-journald"
)


def sim_cluster() -> SimCluster:
    cluster = SimCluster(master_id=MASTER_ID)
    cluster.agents = [SimAgent(S0, HOSTS[0]), SimAgent(S1, HOSTS[1])]
    cluster.frameworks = [
        SimFramework(MARATHON, "marathon"),
        SimFramework(METRONOME, "metronome", role="batch"),
    ]
    cluster.tasks = [
        SimTask(
            "dev_api.instance-1",
            "api",
            MARATHON,
            S0,
            executor_id=DEV[0],
            containers=(DEV[1],),
            labels={"DCOS_SPACE": "/dev/api"},
        ),
        SimTask(
            "devops_api.instance-2",
            "api",
            MARATHON,
            S0,
            executor_id=DEVOPS[0],
            containers=(DEVOPS[1],),
            labels={"DCOS_SPACE": "/devops/api"},
        ),
        SimTask(BATCH_TASK, "nightly", METRONOME, S1, containers=(BATCH[1],)),
        SimTask(
            POD_TASK,
            "web",
            MARATHON,
            S0,
            executor_id=POD[0],
            containers=POD[1:],
            labels={"DCOS_SPACE": "/dev/pod"},
        ),
    ]
    return cluster


@dataclass
class Env:
    base: str
    readers: dict[str, str]
    senders: dict[str, Sender]
    admin: dict[str, str]
    data_dir: Path  # the gateway's: its keys mint a reader's own credential (node_headers)
    sim: MesosSimulator
    reader_port: int

    def get(self, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.get(self.base + path, headers=headers, timeout=15, follow_redirects=False)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    port = port_free_on((*HOSTS, ROGUE_HOST))
    data_dir = tmp_path_factory.mktemp("gw")
    with (
        JournaldNamespace(new_namespace_name()) as ns0,
        JournaldNamespace(new_namespace_name()) as ns1,
        MesosSimulator(sim_cluster(), masters=[(HOSTS[0], 0)]) as sim,
        gateway(data_dir, password=PASSWORD, mesos=sim.urls[0], reader_port=port) as base,
        node_readers(
            {HOSTS[0]: ns0.name, HOSTS[1]: ns1.name}, port, f"{base}/acs/api/v1/auth/jwks"
        ) as readers,
    ):
        senders = {S0: Sender(ns0), S1: Sender(ns1)}
        try:
            admin = login(base, "admin", PASSWORD)
            add_user(base, admin, GATEWAY_UID, "gateway test password")
            readers_by_agent = {S0: readers[HOSTS[0]], S1: readers[HOSTS[1]]}
            yield Env(base, readers_by_agent, senders, admin, data_dir, sim, port)
        finally:
            for sender in senders.values():
                sender.close()


def write(env: Env, agent: str, message: str, **fields: str) -> None:
    env.senders[agent].send({"MESSAGE": message, "SYSLOG_IDENTIFIER": "gwtest", **fields})
    env.senders[agent].sync()


def test_authentication_comes_before_agent_resolution(env: Env) -> None:
    path = "/system/v1/agent/bdcd424a-b59e-4df4-b492-b54e38926bd8-S0/logs/v1/range/"
    anonymous = env.get(path)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "acsjwt"
    assert env.get(path, headers={"Authorization": "token=not.a.token"}).status_code == 401
    unknown = env.get(path, headers=env.admin)
    assert unknown.status_code == 404
    assert "unknown" in unknown.text


def test_logs_without_slash_redirects_relative(env: Env) -> None:
    r = env.get("/system/v1/logs")
    assert r.status_code == 301
    assert r.headers["location"] == "/system/v1/logs/"


def test_agent_range_equals_the_readers_own(env: Env) -> None:
    for i in range(5):
        write(env, S1, f"range line {i}")
    query = "/v1/range/?limit=5&skip_prev=5"
    accept = {"Accept": "application/json"}
    through = env.get(f"/system/v1/agent/{S1}/logs{query}", headers={**env.admin, **accept})
    own = node_headers(env.data_dir, env.readers[S1])
    direct = httpx.get(env.readers[S1] + query, headers={**own, **accept}, timeout=15)
    assert through.status_code == direct.status_code == 200, through.text
    assert through.content == direct.content
    assert b"range line 4" in through.content


def test_master_and_leader_routes_reach_the_leaders_reader(env: Env) -> None:
    # The simulated master's pid is on 127.0.0.2, where agent S0's reader listens too.
    marker = f"leader-{uuid.uuid4().hex}"
    write(env, S0, marker)
    query = "/v1/range/?limit=1&skip_prev=1"
    for prefix in ("/system/v1/logs", "/system/v1/leader/mesos/logs"):
        r = env.get(prefix + query, headers=env.admin)
        assert r.status_code == 200, (prefix, r.text)
        assert marker in r.text


def test_agent_stream_follows_a_new_line(env: Env) -> None:
    marker = f"followed-{uuid.uuid4().hex}"
    headers = {**env.admin, "Accept": "text/event-stream"}
    url = f"{env.base}/system/v1/agent/{S0}/logs/v1/stream/?skip_prev=0"
    timeout = httpx.Timeout(10.0)
    with httpx.stream("GET", url, headers=headers, timeout=timeout) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        time.sleep(0.3)
        write(env, S0, marker)
        deadline = time.monotonic() + 10
        for line in r.iter_lines():
            if marker in line:
                break
            assert time.monotonic() < deadline, "the new line did not arrive"
        else:
            pytest.fail("stream ended before the new line")


def test_readers_refuse_the_callers_token_so_the_gateway_uses_its_own(env: Env) -> None:
    query = "/v1/range/?limit=1"
    direct = httpx.get(env.readers[S0] + query, headers=env.admin, timeout=15)
    assert direct.status_code in (401, 403)
    assert env.get(f"/system/v1/agent/{S0}/logs{query}", headers=env.admin).status_code == 200


def claims_of(token: str) -> dict[str, object]:
    payload = token.split(".")[1]
    claims: dict[str, object] = json.loads(base64.urlsafe_b64decode(payload + "=" * 4))
    return claims


def test_the_gateways_credential_is_good_at_one_node_only(env: Env) -> None:
    # Issue 12 §2: a rogue agent registration receives a token addressed to its own address,
    # living minutes, that no other node reader, nor the gateway, accepts.
    rogue = f"{MASTER_ID}-S140"
    seen: list[str] = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization", ""))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer((ROGUE_HOST, env.reader_port), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    env.sim.add_agent(SimAgent(rogue, ROGUE_HOST))
    try:
        path = f"/system/v1/agent/{rogue}/logs/v1/range/?limit=1"
        wait_for("the rogue agent", lambda: env.get(path, env.admin).status_code == 204 or None)
    finally:
        env.sim.remove_agent(rogue)
        server.shutdown()
        server.server_close()
        thread.join()
    token = seen[-1].removeprefix("token=")
    claims = claims_of(token)
    assert claims["aud"] == f"logway-node:{ROGUE_HOST}:{env.reader_port}"
    assert claims["uid"] == GATEWAY_UID
    assert isinstance(claims["exp"], int)
    assert isinstance(claims["iat"], int)
    assert claims["exp"] - claims["iat"] <= 300
    stolen = {"Authorization": f"token={token}"}
    assert httpx.get(env.readers[S0] + "/v1/range/?limit=1", headers=stolen).status_code == 401
    assert env.get("/capabilities", stolen).status_code == 401
    assert env.get(f"/system/v1/agent/{S0}/logs/v1/range/?limit=1", stolen).status_code == 401


@pytest.mark.parametrize(
    "path",
    ["/capabilities", "/mesos/master/state-summary", f"/system/v1/agent/{S0}/logs/v1/range/"],
)
def test_a_validly_signed_token_of_an_unknown_uid_is_401(env: Env, path: str) -> None:
    # Issue 12 §5: authentication also finds the uid in the IAM; the gateway's own service
    # uid exists, "ghost" never did.
    assert env.get(path, signed_headers(env.data_dir, "admin")).status_code != 401
    assert env.get(path, signed_headers(env.data_dir, "ghost")).status_code == 401


def test_what_mesos_receives_is_addressed_to_mesos(env: Env) -> None:
    recorded = [r.authorization for r in env.sim.requests("/master/state") if r.authorization]
    assert recorded
    scheme, _, redacted = recorded[-1].partition("=")
    assert scheme == "token"
    assert redacted.endswith(".REDACTED")  # the simulator never keeps a usable credential
    claims = claims_of(redacted)
    assert claims["aud"] == "logway-mesos"


def test_user_without_grants_gets_403_on_whole_journals(env: Env) -> None:
    nobody = add_user(env.base, env.admin, "nobody", "nobody password")
    for path in (
        "/system/v1/logs/v1/range/",
        f"/system/v1/agent/{S0}/logs/v1/range/",
        "/system/v1/leader/mesos/logs/v1/range/",
    ):
        r = env.get(path, headers=nobody)
        assert r.status_code == 403, path
        assert "dcos:adminrouter:ops:system-logs" in r.text


def test_app_grant_opens_that_apps_task_logs_only(env: Env) -> None:
    dev = add_user(env.base, env.admin, "dev", "developer password")
    grant(env.base, env.admin, "dcos:mesos:agent:task:app_id:/dev", "dev")
    task_fields = {"FRAMEWORK_ID": MARATHON, "EXECUTOR_ID": DEV[0], "CONTAINER_ID": DEV[1]}
    write(env, S0, "dev task line", **task_fields)

    def task_path(agent: str, executor: str, container: str) -> str:
        return (
            f"/system/v1/agent/{agent}/logs/v1/range/framework/{MARATHON}"
            f"/executor/{executor}/container/{container}"
        )

    ok = env.get(task_path(S0, *DEV), headers=dev)
    assert ok.status_code == 200, ok.text
    assert "dev task line" in ok.text
    assert env.get(task_path(S0, *DEVOPS), headers=dev).status_code == 403
    # The same ids on another agent name no task there: a whole-journal read.
    assert env.get(task_path(S1, *DEV), headers=dev).status_code == 403
    # `filter=` never widens what the path allows.
    whole = f"/system/v1/agent/{S0}/logs/v1/range/?filter=CONTAINER_ID:{DEV[1]}"
    assert env.get(whole, headers=dev).status_code == 403
    assert env.get("/system/v1/logs/v1/range/", headers=dev).status_code == 403


def test_mesos_down_log_routes_503_iam_still_works(tmp_path: Path) -> None:
    with gateway(
        tmp_path, password=PASSWORD, mesos="http://127.0.0.5:9", reader_port=61001
    ) as base:
        admin = login(base, "admin", PASSWORD)
        for path in ("/system/v1/logs/v1/range/", f"/system/v1/agent/{S0}/logs/v1/range/"):
            assert httpx.get(base + path, timeout=15).status_code == 401
            r = httpx.get(base + path, headers=admin, timeout=15)
            assert r.status_code == 503, (path, r.text)
        users = httpx.get(f"{base}/acs/api/v1/users", headers=admin, timeout=15)
        assert users.status_code == 200


# The authorization matrix: who may read what, on every log route.

OPS, DEVS, BATCHERS, NOBODY = "m-ops", "m-dev", "m-batch", "m-nobody"
GRANTS = {
    OPS: "dcos:adminrouter:ops:system-logs",
    DEVS: "dcos:mesos:agent:task:app_id:/dev",
    BATCHERS: "dcos:mesos:agent:framework:role:batch",
}


@pytest.fixture(scope="module")
def users(env: Env) -> dict[str, dict[str, str]]:
    tokens = {}
    for uid in (OPS, DEVS, BATCHERS, NOBODY):
        tokens[uid] = add_user(env.base, env.admin, uid, f"{uid} password")
        if uid in GRANTS:
            grant(env.base, env.admin, GRANTS[uid], uid)
    dev = {"FRAMEWORK_ID": MARATHON, "EXECUTOR_ID": DEV[0], "CONTAINER_ID": DEV[1]}
    pod = {"FRAMEWORK_ID": MARATHON, "EXECUTOR_ID": POD[0], "CONTAINER_ID": ".".join(POD[1:])}
    batch = {"FRAMEWORK_ID": METRONOME, "EXECUTOR_ID": BATCH[0], "CONTAINER_ID": BATCH[1]}
    write(env, S0, "matrix dev out", STREAM="STDOUT", TASK_ID="dev_api.instance-1", **dev)
    write(env, S0, "matrix pod out", STREAM="STDOUT", TASK_ID=POD_TASK, **pod)
    write(env, S1, "matrix batch err", STREAM="STDERR", TASK_ID=BATCH_TASK, **batch)
    write(env, S0, "matrix system line")
    return tokens


def v1_task(agent: str, framework: str, executor: str, container: str, kind: str = "range") -> str:
    return (
        f"/system/v1/agent/{agent}/logs/v1/{kind}/framework/{framework}"
        f"/executor/{executor}/container/{container}"
    )


def v2_run(agent: str, framework: str, executor: str, run: str, rest: str) -> str:
    return (
        f"/system/v1/agent/{agent}/logs/v2/task/frameworks/{framework}"
        f"/executors/{executor}/runs/{run}{rest}"
    )


ALL, NONE_BUT_OPS = (200, 200, 200, 200), (200, 403, 403, 403)
DEV_ROUTE, BATCH_ROUTE = (200, 200, 403, 403), (200, 403, 200, 403)
MATRIX = [
    # path, status for (ops, devs, batchers, nobody)
    ("/system/v1/logs/v1/range/?skip_prev=1", NONE_BUT_OPS),
    ("/system/v1/leader/mesos/logs/v1/range/?skip_prev=1", NONE_BUT_OPS),
    (f"/system/v1/agent/{S0}/logs/v1/range/?skip_prev=1", NONE_BUT_OPS),
    (f"/system/v1/agent/{S0}/logs/v1/range/download?skip_prev=1", NONE_BUT_OPS),
    (f"/system/v1/agent/{S0}/logs/v1/fields/STREAM", NONE_BUT_OPS),
    (f"/system/v1/agent/{S0}/logs/v2/component?skip=-1", NONE_BUT_OPS),
    (f"/system/v1/agent/{S1}/logs/v2/component/gwtest.service?skip=-1", (204, 403, 403, 403)),
    (v1_task(S0, MARATHON, *DEV), DEV_ROUTE),
    (v1_task(S0, MARATHON, *DEV) + "/download", DEV_ROUTE),
    (v1_task(S0, MARATHON, POD[0], ".".join(POD[1:])), DEV_ROUTE),
    (v1_task(S0, MARATHON, *DEVOPS), (204, 403, 403, 403)),
    (v1_task(S1, METRONOME, *BATCH), BATCH_ROUTE),
    # The dev task's ids on the other agent name no task there: a whole-journal read.
    (v1_task(S1, MARATHON, *DEV), (204, 403, 403, 403)),
    (v2_run(S0, MARATHON, *DEV, "/stdout"), DEV_ROUTE),
    (v2_run(S0, MARATHON, POD[0], POD[1], f"/tasks/{POD_TASK}/stdout"), DEV_ROUTE),
    (v2_run(S1, METRONOME, *BATCH, "/stderr"), BATCH_ROUTE),
    # Another task id under the pod's container names no known task: a whole-journal read.
    (v2_run(S0, MARATHON, POD[0], POD[1], "/tasks/other.task/stdout"), (204, 403, 403, 403)),
    ("/system/v1/logs/v2/task/dev_api.instance-1/file/stdout", DEV_ROUTE),
    ("/system/v1/logs/v2/task/dev_api.instance-1", DEV_ROUTE),
    (f"/system/v1/logs/v2/task/{POD_TASK}/file/stdout", DEV_ROUTE),
    ("/system/v1/logs/v2/task/nightly/file/stderr", BATCH_ROUTE),
    ("/system/v1/logs/v2/task/nightly/file/stdout", (204, 403, 204, 403)),
    # Unknown: 404 only to whoever could have read it; everyone else learns nothing.
    ("/system/v1/logs/v2/task/no-such-task/file/stdout", (404, 403, 403, 403)),
]


@pytest.mark.parametrize(("path", "expected"), MATRIX, ids=[p for p, _ in MATRIX])
def test_authorization_matrix(
    env: Env, users: dict[str, dict[str, str]], path: str, expected: tuple[int, ...]
) -> None:
    got = tuple(env.get(path, headers=users[uid]).status_code for uid in users)
    assert got == expected, path


def test_follows_are_authorized_like_ranges(env: Env, users: dict[str, dict[str, str]]) -> None:
    sse = {"Accept": "text/event-stream"}
    cases = [
        (v1_task(S0, MARATHON, *DEV, kind="stream"), DEV_ROUTE),
        (f"/system/v1/agent/{S0}/logs/v1/stream/?skip_prev=1", NONE_BUT_OPS),
        ("/system/v1/logs/v2/task/dev_api.instance-1/file/stdout?skip=-1", DEV_ROUTE),
    ]
    for path, expected in cases:
        got = []
        for uid in users:
            headers = {**users[uid], **sse}
            with httpx.stream("GET", env.base + path, headers=headers, timeout=15) as r:
                got.append(r.status_code)
                if r.status_code == 200:
                    assert r.headers["content-type"].startswith("text/event-stream")
        assert tuple(got) == expected, path


def test_v2_task_serves_that_tasks_lines_like_the_dcos_cli_reads_them(
    env: Env, users: dict[str, dict[str, str]]
) -> None:
    r = env.get(
        "/system/v1/logs/v2/task/dev_api.instance-1/file/stdout?cursor=END&skip=-1",
        headers={**users[DEVS], "Accept": "text/plain"},
    )
    assert (r.status_code, r.text) == (200, "matrix dev out\n")
    err = env.get("/system/v1/logs/v2/task/nightly/file/stderr", headers=users[BATCHERS])
    assert err.text == "matrix batch err\n"


def test_ambiguous_task_names_list_only_what_the_caller_may_read(
    env: Env, users: dict[str, dict[str, str]]
) -> None:
    path = "/system/v1/logs/v2/task/api/file/stdout"
    ops = env.get(path, headers=users[OPS])
    assert ops.status_code == 409
    assert "dev_api.instance-1" in ops.text
    assert "devops_api.instance-2" in ops.text
    dev = env.get(path, headers=users[DEVS])
    assert dev.status_code == 409
    assert "dev_api.instance-1" in dev.text
    assert "devops" not in dev.text
    assert env.get(path, headers=users[NOBODY]).status_code == 403


def test_v2_task_other_files_are_404_after_authentication(
    env: Env, users: dict[str, dict[str, str]]
) -> None:
    for rest in ("file/sandbox.log", "browse", "file/stdout/download"):
        path = f"/system/v1/logs/v2/task/dev_api.instance-1/{rest}"
        assert env.get(path).status_code == 401
        r = env.get(path, headers=users[OPS])
        assert r.status_code == 404, rest
        assert "stdout" in r.text
