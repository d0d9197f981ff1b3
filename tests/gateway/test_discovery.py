"""The discovery routes the dcos CLI needs.

End to end: a real `logway gateway` process over a simulated Mesos master, users and grants
made through the IAM API, and the real dcos CLI 0.6.1 when it is installed. Then the state
filtering itself, on the captured DC/OS 1.10 master state and with a counting authorizer."""

from __future__ import annotations

import copy
import os
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from app.authz import Action, Decision
from app.cluster import ClusterSnapshot, build_snapshot
from app.core.errors import Unavailable
from app.devcluster.mesos import MesosSimulator, SimAgent, SimCluster, SimFramework, SimTask
from app.gateway.discovery import (
    CAPABILITIES_TYPE,
    Visibility,
    agent_state,
    state_summary,
    visibility,
    visible_state,
)
from tests.cluster.support import fixture_path
from tests.gateway import support
from tests.gateway.support import gateway, login

PASSWORD = "admin password for tests"
MASTER_HOST = "127.0.0.2"
MASTER_ID = "5d0b1f4e-0000-4000-8000-0000000000d1"
S0, S1 = f"{MASTER_ID}-S0", f"{MASTER_ID}-S1"
MARATHON, METRONOME = f"{MASTER_ID}-0000", f"{MASTER_ID}-0001"
UNKNOWN_AGENT = f"{MASTER_ID}-S9"
DEV_RUNNING = ("dev_api.instance-1", "dev_api.instance-2")
DEV_FINISHED = "dev_api.instance-0"
DEV_TASKS = {*DEV_RUNNING, DEV_FINISHED}
OTHER_TASKS = {"devops_api.instance-3", "dev_api-v2.instance-4", "nightly_20240101"}
ALL_TASKS = DEV_TASKS | OTHER_TASKS
DEV_GRANT = "dcos:mesos:agent:task:app_id:/dev/api"
CLI = Path("/tmp/dcos-cli/bin/dcos")
CLI_ACCEPT = {"Accept": CAPABILITIES_TYPE, "Content-Type": CAPABILITIES_TYPE}
TASK_LISTS = ("tasks", "unreachable_tasks", "completed_tasks")


def sim_cluster() -> SimCluster:
    def app(task_id: str, app_id: str, agent: str, **extra: Any) -> SimTask:
        space = {"DCOS_SPACE": app_id}
        return SimTask(task_id, app_id.rsplit("/", 1)[1], MARATHON, agent, labels=space, **extra)

    cluster = SimCluster(master_id=MASTER_ID)
    cluster.agents = [SimAgent(S0, "10.9.0.1"), SimAgent(S1, "10.9.0.2")]
    cluster.frameworks = [SimFramework(MARATHON, "marathon"), SimFramework(METRONOME, "metronome")]
    cluster.tasks = [
        app(DEV_RUNNING[0], "/dev/api", S0, executor_id="dev_api.exec-1"),
        app(DEV_RUNNING[1], "/dev/api", S1),
        app(DEV_FINISHED, "/dev/api", S1, state="TASK_FINISHED", completed=True),
        app("devops_api.instance-3", "/devops/api", S0),
        app("dev_api-v2.instance-4", "/dev/api-v2", S0),
        SimTask("nightly_20240101", "nightly", METRONOME, S1),
    ]
    return cluster


@dataclass
class Env:
    base: str
    mesos: str
    users: dict[str, dict[str, str]]  # name -> Authorization header

    def get(self, path: str, user: str | None = None, **headers: str) -> httpx.Response:
        if user is not None:
            headers |= self.users[user]
        return httpx.get(self.base + path, headers=headers, timeout=15)

    def json(self, path: str, user: str) -> Any:
        r = self.get(path, user)
        assert r.status_code == 200, (path, r.status_code, r.text)
        assert r.headers["content-type"] == "application/json"
        return r.json()


def add_user(base: str, admin: dict[str, str], uid: str, *grants: str) -> dict[str, str]:
    token = support.add_user(base, admin, uid, f"{uid} password for tests")
    for rid in grants:
        support.grant(base, admin, rid, uid)
    return token


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    with (
        MesosSimulator(sim_cluster(), masters=[(MASTER_HOST, 0)]) as sim,
        gateway(
            tmp_path_factory.mktemp("gw"), password=PASSWORD, mesos=sim.urls[0], reader_port=61001
        ) as base,
    ):
        admin = login(base, "admin", PASSWORD)
        users = {
            "admin": admin,
            "ops": add_user(base, admin, "ops", "dcos:adminrouter:ops:system-logs"),
            "dev": add_user(base, admin, "dev", DEV_GRANT),
            "nobody": add_user(base, admin, "nobody"),
        }
        yield Env(base, sim.urls[0], users)


def task_ids(state: Any) -> set[str]:
    frameworks = [*state["frameworks"], *state.get("completed_frameworks", [])]
    listed = [t for f in frameworks for key in TASK_LISTS for t in f.get(key, [])]
    return {t["id"] for t in listed + state.get("orphan_tasks", [])}


def executors(agent: Any) -> dict[str, list[str]]:
    """executor id -> the ids of its tasks, over every list the dcos CLI reads."""
    found: dict[str, list[str]] = {}
    for framework in agent["frameworks"] + agent["completed_frameworks"]:
        for executor in framework["executors"] + framework["completed_executors"]:
            tasks = executor["tasks"] + executor["completed_tasks"] + executor["queued_tasks"]
            found[executor["id"]] = [t["id"] for t in tasks]
    return found


ROUTES = (
    "/capabilities",
    "/dcos-metadata/ui-config.json",
    "/dcos-metadata/dcos-version.json",
    "/dcos-metadata/nothing-here.json",
    "/mesos/master/state",
    "/mesos/master/state.json",
    "/mesos/master/state-summary",
    f"/slave/{S0}/state.json",
    f"/agent/{S0}/state.json",
    f"/slave/{UNKNOWN_AGENT}/state.json",
    "/slave/not_an_agent!/state.json",
)


@pytest.mark.parametrize("path", ROUTES)
def test_every_route_needs_a_token_first(env: Env, path: str) -> None:
    anonymous = env.get(path)
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.headers["www-authenticate"] == "acsjwt"
    assert env.get(path, Authorization="token=not.a.token").status_code == 401


@pytest.mark.parametrize("accept", [CLI_ACCEPT, {"Accept": "*/*"}, {"Accept": "text/html"}, {}])
def test_capabilities_in_cosmos_media_type(env: Env, accept: dict[str, str]) -> None:
    for user in ("admin", "nobody"):
        r = env.get("/capabilities", user, **accept)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == CAPABILITIES_TYPE
        assert r.json() == {"capabilities": [{"name": "LOGGING"}, {"name": "LOGGING_V2"}]}


def test_ui_config_says_journald(env: Env) -> None:
    config = env.json("/dcos-metadata/ui-config.json", "nobody")
    assert config["uiConfiguration"]["plugins"]["mesos"]["logging-strategy"] == "journald"


def test_dcos_version_describes_logway(env: Env) -> None:
    assert env.json("/dcos-metadata/dcos-version.json", "nobody") == {
        "version": metadata.version("logway"),
        "dcos-variant": "open",
        "dcos-image-commit": None,
        "bootstrap-id": None,
    }


def test_other_metadata_is_404(env: Env) -> None:
    r = env.get("/dcos-metadata/nothing-here.json", "admin")
    assert r.status_code == 404
    assert "/dcos-metadata/nothing-here.json" in r.text


@pytest.mark.parametrize("user", ["admin", "ops"])
def test_system_logs_holders_see_the_state_as_mesos_gave_it(env: Env, user: str) -> None:
    mesos = httpx.get(f"{env.mesos}/master/state", timeout=15).json()
    for path in ("/mesos/master/state", "/mesos/master/state.json"):
        state = env.json(path, user)
        assert state == mesos
        assert task_ids(state) == ALL_TASKS
        assert "flags" in state


def test_app_grant_shows_only_that_apps_tasks_in_the_state(env: Env) -> None:
    mesos = httpx.get(f"{env.mesos}/master/state", timeout=15).json()
    state = env.json("/mesos/master/state.json", "dev")
    assert task_ids(state) == DEV_TASKS  # not /devops/api, not /dev/api-v2, not Metronome's
    assert "flags" not in state
    # The structure stays: every agent and framework, the framework's own fields intact.
    assert state["slaves"] == mesos["slaves"]
    assert [f["name"] for f in state["frameworks"]] == ["marathon", "metronome"]
    assert state["frameworks"][0]["user"] == mesos["frameworks"][0]["user"]
    assert state["frameworks"][1]["tasks"] == []
    assert state == env.json("/mesos/master/state", "dev")


def test_app_grant_counts_only_that_apps_tasks_in_the_summary(env: Env) -> None:
    summary = env.json("/mesos/master/state-summary", "dev")
    agents = {a["id"]: a for a in summary["slaves"]}
    assert set(agents) == {S0, S1}
    assert (agents[S0]["TASK_RUNNING"], agents[S1]["TASK_RUNNING"]) == (1, 1)
    assert agents[S1]["TASK_FINISHED"] == 1
    assert agents[S1]["framework_ids"] == [MARATHON]  # not Metronome's: no task of it shown
    frameworks = {f["name"]: f for f in summary["frameworks"]}
    assert frameworks["marathon"]["slave_ids"] == [S0, S1]
    assert frameworks["metronome"]["TASK_RUNNING"] == 0
    admin = {a["id"]: a for a in env.json("/mesos/master/state-summary", "admin")["slaves"]}
    assert (admin[S0]["TASK_RUNNING"], admin[S1]["TASK_RUNNING"]) == (3, 2)
    assert admin[S1]["framework_ids"] == [MARATHON, METRONOME]


def test_app_grant_shows_only_that_apps_executors_in_an_agent_state(env: Env) -> None:
    s0 = env.json(f"/slave/{S0}/state.json", "dev")
    assert s0["id"] == S0
    assert executors(s0) == {"dev_api.exec-1": [DEV_RUNNING[0]]}
    (marathon,) = s0["frameworks"]
    (executor,) = marathon["executors"]
    task = executor["tasks"][0]
    assert task["statuses"][0]["container_status"]["container_id"]["value"] == executor["container"]
    assert executor["directory"].endswith(f"/executors/dev_api.exec-1/runs/{executor['container']}")
    s1 = env.json(f"/agent/{S1}/state.json", "dev")
    assert executors(s1) == {DEV_RUNNING[1]: [DEV_RUNNING[1]], DEV_FINISHED: [DEV_FINISHED]}
    (marathon,) = s1["frameworks"]
    assert [e["id"] for e in marathon["completed_executors"]] == [DEV_FINISHED]
    assert s1 == env.json(f"/slave/{S1}/state.json", "dev")


def test_admin_sees_every_executor_in_an_agent_state(env: Env) -> None:
    s1 = env.json(f"/slave/{S1}/state.json", "admin")
    assert set(executors(s1)) == {DEV_RUNNING[1], DEV_FINISHED, "nightly_20240101"}
    assert [f["name"] for f in s1["frameworks"]] == ["marathon", "metronome"]


def test_no_grants_no_tasks(env: Env) -> None:
    state = env.json("/mesos/master/state.json", "nobody")
    assert task_ids(state) == set()
    assert all(f["executors"] == [] for f in state["frameworks"])
    assert len(state["slaves"]) == 2
    summary = env.json("/mesos/master/state-summary", "nobody")
    assert all(a["TASK_RUNNING"] == 0 and a["framework_ids"] == [] for a in summary["slaves"])
    agent = env.json(f"/slave/{S0}/state.json", "nobody")
    assert (agent["id"], agent["frameworks"], agent["completed_frameworks"]) == (S0, [], [])


@pytest.mark.parametrize(
    ("path", "words"),
    [
        (f"/slave/{UNKNOWN_AGENT}/state.json", f"agent `{UNKNOWN_AGENT}` unknown"),
        (f"/agent/{UNKNOWN_AGENT}/state.json", f"agent `{UNKNOWN_AGENT}` unknown"),
        ("/slave/not_an_agent!/state.json", "agent id must match"),
    ],
)
def test_unknown_or_malformed_agent_is_404(env: Env, path: str, words: str) -> None:
    r = env.get(path, "admin")
    assert r.status_code == 404
    assert words in r.text


def test_mesos_down_state_routes_503_capabilities_still_answer(tmp_path: Path) -> None:
    with gateway(
        tmp_path, password=PASSWORD, mesos="http://127.0.0.5:9", reader_port=61001
    ) as base:
        admin = login(base, "admin", PASSWORD)
        for path in ROUTES[4:9]:
            r = httpx.get(base + path, headers=admin, timeout=15)
            assert r.status_code == 503, (path, r.text)
            assert "cluster state" in r.text
        assert httpx.get(base + "/capabilities", headers=admin, timeout=15).status_code == 200


# The real dcos CLI 0.6.1 ----------------------------------------------------------------


def dcos(
    env: Env, user: str, tmp_path: Path, *args: str, program: Path = CLI
) -> subprocess.CompletedProcess[str]:
    """Run the CLI (or `program` from its venv) as `user`, with a config of its own."""
    if not CLI.exists():
        pytest.skip(
            f"the dcos CLI 0.6.1 is not installed at {CLI} (shared/tools/install-dcos-cli.sh)"
        )
    token = env.users[user]["Authorization"].removeprefix("token=")
    config = tmp_path / "dcos.toml"
    config.write_text(
        f'[core]\ndcos_url = "{env.base}"\ndcos_acs_token = "{token}"\nreporting = false\n'
    )
    config.chmod(0o600)
    cli_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DCOS_DIR": str(tmp_path / "dcos"),  # no cluster directories: DCOS_CONFIG is used
        "DCOS_CONFIG": str(config),
    }
    argv = [str(program), *args]
    return subprocess.run(argv, env=cli_env, capture_output=True, text=True, timeout=60)


def test_cli_task_lists_what_the_caller_may_see(env: Env, tmp_path: Path) -> None:
    admin = dcos(env, "admin", tmp_path, "task", "--json", "--all")
    assert admin.returncode == 0, admin.stderr
    assert {t["id"] for t in orjson.loads(admin.stdout)} == ALL_TASKS
    dev = dcos(env, "dev", tmp_path, "task", "--json", "--all")
    assert dev.returncode == 0, dev.stderr
    assert {t["id"] for t in orjson.loads(dev.stdout)} == DEV_TASKS
    table = dcos(env, "dev", tmp_path, "task")
    assert table.returncode == 0, table.stderr
    assert DEV_RUNNING[0] in table.stdout
    assert S1 in table.stdout  # the MESOS ID column
    assert "devops" not in table.stdout
    assert "nightly" not in table.stdout


def test_cli_reads_version_and_summary(env: Env, tmp_path: Path) -> None:
    version = dcos(env, "nobody", tmp_path, "--version")
    assert version.returncode == 0, version.stderr
    assert f"dcos.version={metadata.version('logway')}" in version.stdout
    # `dcos node`: the masters from Mesos-DNS (the gateway answers with the leader), the agents
    # from the summary.
    nodes = dcos(env, "nobody", tmp_path, "node")
    assert nodes.returncode == 0, nodes.stderr
    assert S0 in nodes.stdout
    assert MASTER_HOST in nodes.stdout
    # `list-components` looks the agent up in the summary, then asks the health API (not
    # served) at the address it found there.
    args = ("node", "list-components")
    unknown = dcos(env, "nobody", tmp_path, *args, f"--mesos-id={UNKNOWN_AGENT}")
    assert unknown.returncode == 1
    assert f"Agent `{UNKNOWN_AGENT}` not found" in unknown.stderr
    known = dcos(env, "nobody", tmp_path, *args, f"--mesos-id={S0}")
    assert "not found" not in known.stderr
    assert "/system/health/v1/nodes/10.9.0.1/units" in known.stderr


# What `dcos task log` does without LOGGING_V2 (dcoscli/task/main.py `_dcos_log`): find the
# task's executor in its agent's state, then the container ids of the executor's tasks.
CLI_V1_LOOKUP = """
import json
from dcos import mesos
from dcoscli.task.main import get_nested_container_id
found = {}
for task in mesos.get_master().tasks(all_=True):
    executor = task.executor()
    listed = executor["tasks"] + executor["completed_tasks"]
    own = next(t for t in listed if t["id"] == task["id"])
    found[task["id"]] = [task["slave_id"], executor["id"], get_nested_container_id(own)]
print(json.dumps(found))
"""


def test_cli_finds_executors_and_containers_in_agent_states(env: Env, tmp_path: Path) -> None:
    python = CLI.parent / "python"
    found = dcos(env, "dev", tmp_path, "-c", CLI_V1_LOOKUP, program=python)
    assert found.returncode == 0, found.stderr
    state = env.json("/mesos/master/state.json", "admin")
    marathon = state["frameworks"][0]
    expected = {}
    for task in marathon["tasks"] + marathon["completed_tasks"]:
        if task["id"] in DEV_TASKS:
            container = task["statuses"][0]["container_status"]["container_id"]["value"]
            executor = task["executor_id"] or task["id"]
            expected[task["id"]] = [task["slave_id"], executor, container]
    assert orjson.loads(found.stdout) == expected
    assert expected[DEV_RUNNING[0]][1] == "dev_api.exec-1"


# Filtering, on the captured DC/OS 1.10 master state -------------------------------------

PREFIX = "db10f9b1-5b82-4187-aa47-4fbcefc7cdca"
FIXTURE_S0, FIXTURE_S1 = f"{PREFIX}-S0", f"{PREFIX}-S1"
POD = "parent-pod.instance-da6ef080-b81f-11e7-a9ac-52ad791ffaa8"
POD_EXECUTOR = "instance-parent-pod.da6ef080-b81f-11e7-a9ac-52ad791ffaa8"
POD_CONTAINER = "1eb53d03-e8f2-4de7-8a51-be17b42a3a29"
DOCKER = "single-docker-container.ac0b2d2e-b81f-11e7-a9ac-52ad791ffaa8"
POD_ONLY = Visibility(frozenset({("/parent-pod", "slave_public")}))
EVERYTHING = Visibility(None)
NOTHING = Visibility(frozenset())


@pytest.fixture
def snapshot() -> ClusterSnapshot:
    return build_snapshot(fixture_path().read_bytes(), reader_scheme="http", reader_port=61001)


def test_everything_is_the_document_itself(snapshot: ClusterSnapshot) -> None:
    assert visible_state(snapshot, EVERYTHING) is snapshot.state


def test_pod_grant_keeps_the_pods_tasks_and_executor_only(snapshot: ClusterSnapshot) -> None:
    before = copy.deepcopy(snapshot.state)
    state = visible_state(snapshot, POD_ONLY)
    assert task_ids(state) == {f"{POD}.container-1", f"{POD}.container-2"}
    marathon = state["frameworks"][1]
    assert marathon["name"] == "marathon"
    assert [e["executor_id"] for e in marathon["executors"]] == [POD_EXECUTOR]
    assert [f["name"] for f in state["completed_frameworks"]] == ["cassandra"]
    assert "flags" not in state
    assert state["slaves"] == snapshot.state["slaves"]
    assert snapshot.state == before  # filtered copies, the snapshot untouched


def test_nothing_visible_keeps_only_structure(snapshot: ClusterSnapshot) -> None:
    state = visible_state(snapshot, NOTHING)
    assert task_ids(state) == set()
    assert all(f["executors"] == [] for f in state["frameworks"] + state["completed_frameworks"])
    assert len(state["frameworks"]) == len(snapshot.state["frameworks"])


def test_a_reused_task_id_shows_both_listings(snapshot: ClusterSnapshot) -> None:
    # The fixture lists DOCKER twice; both runs belong to one app, so both are shown or not.
    state = visible_state(
        snapshot, Visibility(frozenset({("/single-docker-container", "slave_public")}))
    )
    marathon = state["frameworks"][1]
    assert [t["name"] for t in marathon["tasks"]] == ["single-docker-container"]
    assert [t["name"] for t in marathon["completed_tasks"]] == ["single-docker-completed"]


@pytest.mark.parametrize(
    ("seen", "s1_running", "framework_ids"),
    [(EVERYTHING, 7, [f"{PREFIX}-0000"]), (POD_ONLY, 2, [f"{PREFIX}-0000"]), (NOTHING, 0, [])],
)
def test_summary_counts_the_visible_tasks(
    snapshot: ClusterSnapshot, seen: Visibility, s1_running: int, framework_ids: list[str]
) -> None:
    summary = state_summary(snapshot, seen)
    assert (summary["hostname"], summary["cluster"]) == ("10.0.4.125", "mnaboka-ewam5mm")
    agents = {a["id"]: a for a in summary["slaves"]}
    assert agents[FIXTURE_S1]["TASK_RUNNING"] == s1_running
    assert agents[FIXTURE_S1]["framework_ids"] == framework_ids
    assert agents[FIXTURE_S1]["pid"] == "slave(1)@10.0.0.157:5051"
    assert agents[FIXTURE_S0]["TASK_RUNNING"] == 0
    # Registered frameworks only, as Mesos's summary: Cassandra completed.
    assert [f["name"] for f in summary["frameworks"]] == ["metronome", "marathon"]
    assert "tasks" not in summary["frameworks"][1]


def test_agent_state_of_a_pod(snapshot: ClusterSnapshot) -> None:
    agent = agent_state(snapshot, POD_ONLY, FIXTURE_S1)
    assert agent is not None
    assert (agent["id"], agent["pid"], agent["master_hostname"]) == (
        FIXTURE_S1,
        "slave(1)@10.0.0.157:5051",
        "10.0.4.125",
    )
    (marathon,) = agent["frameworks"]
    (executor,) = marathon["executors"]
    assert (executor["id"], executor["container"]) == (POD_EXECUTOR, POD_CONTAINER)
    assert executor["directory"] == (
        f"/var/lib/mesos/slave/slaves/{FIXTURE_S1}/frameworks/{PREFIX}-0000"
        f"/executors/{POD_EXECUTOR}/runs/{POD_CONTAINER}"
    )
    assert [t["id"] for t in executor["tasks"]] == [f"{POD}.container-2", f"{POD}.container-1"]
    assert executor["tasks"][0] is snapshot.state["frameworks"][1]["tasks"][0]
    assert agent_state(snapshot, NOTHING, FIXTURE_S1) == agent | {
        "frameworks": [],
        "completed_frameworks": [],
    }


def test_agent_state_command_executors_and_a_reused_id(snapshot: ClusterSnapshot) -> None:
    agent = agent_state(snapshot, EVERYTHING, FIXTURE_S1)
    assert agent is not None
    found = executors(agent)
    assert found[DOCKER] == [DOCKER, DOCKER]  # the running and the completed listing
    assert found["test123-123"] == ["test123-123"]  # command executor: the task's own id
    assert len(found) == 5
    assert agent_state(snapshot, EVERYTHING, FIXTURE_S0) == agent_state(
        snapshot, NOTHING, FIXTURE_S0
    )
    assert agent_state(snapshot, EVERYTHING, f"{PREFIX}-S9") is None


# Decisions: one per distinct (app id, role), never one per task ----------------------------


class CountingAuthorizer:
    def __init__(self, allowed: Iterable[str] = (), *, failing: bool = False) -> None:
        self.allowed = set(allowed)
        self.failing = failing
        self.asked: list[str] = []

    async def authorize(self, uid: str, rid: str, action: Action) -> Decision:
        self.asked.append(rid)
        if self.failing:
            raise Unavailable("IAM down")
        return Decision.ALLOW if rid in self.allowed else Decision.DENY


def many_tasks(count: int, **framework: Any) -> ClusterSnapshot:
    apps = ("/a", "/b", "/c")
    ids = [f"{apps[i % 3][1:]}.instance-{i}" for i in range(count)]
    tasks = [
        {
            "id": ids[i],
            "name": "t",
            "framework_id": "f1",
            "executor_id": ids[i],  # a custom executor per task
            "slave_id": "a1",
            "state": "TASK_RUNNING",
            "labels": [{"key": "DCOS_SPACE", "value": apps[i % 3]}],
        }
        for i in range(count)
    ]
    doc = {
        "id": "m1",
        "pid": "master@10.0.0.9:5050",
        "leader": "master@10.0.0.9:5050",
        "slaves": [],
        "frameworks": [{"id": "f1", "name": "marathon", "role": "r1", "tasks": tasks, **framework}],
    }
    return build_snapshot(orjson.dumps(doc), reader_scheme="http", reader_port=61001)


def test_offers_and_executors_of_hidden_tasks_are_left_out() -> None:
    infos = [
        {"executor_id": "a.instance-0", "slave_id": "a1", "command": {"value": "secret"}},
        {"executor_id": "b.instance-1", "slave_id": "a1", "command": {"value": "shown"}},
        {"executor_id": "b.instance-1", "slave_id": "a2", "command": {"value": "elsewhere"}},
    ]
    offers = [{"id": "o1", "slave_id": "a1", "resources": {"cpus": 1}}]
    snapshot = many_tasks(3, executors=infos, offers=offers)
    state = visible_state(snapshot, Visibility(frozenset({("/b", "r1")})))
    (framework,) = state["frameworks"]
    assert [t["id"] for t in framework["tasks"]] == ["b.instance-1"]
    assert framework["executors"] == [infos[1]]
    assert framework["offers"] == []
    assert visible_state(snapshot, EVERYTHING)["frameworks"][0]["offers"] == offers


async def test_thousands_of_tasks_cost_a_few_decisions() -> None:
    snapshot = many_tasks(3000)
    authorizer = CountingAuthorizer({"dcos:mesos:agent:task:app_id:/b"})
    seen = await visibility("dev", authorizer, snapshot)
    assert seen.readable == frozenset({("/b", "r1")})
    assert len(task_ids(visible_state(snapshot, seen))) == 1000
    # Whatever the number of tasks: system-logs, then each resource id at most once.
    assert authorizer.asked[0] == "dcos:adminrouter:ops:system-logs"
    assert len(authorizer.asked) <= 1 + 3 * 3
    assert len(set(authorizer.asked)) == len(authorizer.asked)


async def test_system_logs_holders_cost_one_decision(snapshot: ClusterSnapshot) -> None:
    authorizer = CountingAuthorizer({"dcos:adminrouter:ops:system-logs"})
    assert await visibility("ops", authorizer, snapshot) == EVERYTHING
    assert authorizer.asked == ["dcos:adminrouter:ops:system-logs"]


async def test_role_grant_opens_the_roles_tasks(snapshot: ClusterSnapshot) -> None:
    authorizer = CountingAuthorizer({"dcos:mesos:agent:framework:role:cassandra-role"})
    seen = await visibility("dba", authorizer, snapshot)
    assert task_ids(visible_state(snapshot, seen)) == {
        "node-0-server__29de48bb-dfd7-4ccc-a5ba-7918b2eb880c"
    }


async def test_an_authorizer_that_cannot_decide_fails_the_request(
    snapshot: ClusterSnapshot,
) -> None:
    with pytest.raises(Unavailable):
        await visibility("dev", CountingAuthorizer(failing=True), snapshot)
