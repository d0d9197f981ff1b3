"""A task inside a Mesos pod, end to end (issue 20): a real gateway (embedded IAM), a
`logway node` reader over a journald namespace on 127.0.72.1, the Mesos simulator on .2 (a
task group's tasks in nested containers under the default executor's, reference §8), the
gateway on .3, and each pod task's lines written by `logway ship --task-id`.

    S0 (.1)  /dev/batch  pod instance d1: tasks `step` and `check`  role dev
             /prod/batch pod instance p1: task `step`               role prod

The caller granted /dev reads its pod task on every path that names it (dcos-log v2's
`runs/<executor's container>/tasks/<task id>/stdout`, v1's joined container chain, the task
by id): that task's lines only, not its sibling's; /prod/batch's task is refused on its own
path and on paths that borrow the /dev instance's ids; a malformed pod path is a 4xx.
"""

from __future__ import annotations

import contextlib
import subprocess
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import httpx
import pytest

from app.devcluster.commands import logway_argv
from app.devcluster.journald import JournaldNamespace
from app.devcluster.mesos import MesosSimulator, SimAgent, SimCluster, SimFramework
from tests.conftest import journald_available, new_namespace_name
from tests.gateway.support import GATEWAY_UID, Reader, add_user, grant, login, port_free_on
from tests.support.gateway import gateway as support_gateway
from tests.support.tasks import PodTaskDef
from tests.support.wait import wait_for

pytestmark = pytest.mark.skipif(not journald_available(), reason="needs root and journald")

PASSWORD = "admin password for pod task tests"
AGENT_HOST, MESOS_HOST, GATEWAY_HOST = "127.0.72.1", "127.0.72.2", "127.0.72.3"
MASTER_ID = "6a1e5c0d-0000-4000-8000-000000072001"
AGENT = f"{MASTER_ID}-S0"
MARATHON = f"{MASTER_ID}-0000"
DEADLINE = 30.0
LOG_TAIL = 6000

DEV_STEP, DEV_CHECK = (
    PodTaskDef("/dev/batch", "dev", AGENT, "d1", name, MARATHON) for name in ("step", "check")
)
PROD_STEP = PodTaskDef("/prod/batch", "prod", AGENT, "p1", "step", MARATHON)
PODS = (DEV_STEP, DEV_CHECK, PROD_STEP)


@dataclass
class Env:
    base: str
    admin: dict[str, str]
    dev: dict[str, str]
    run: str  # every line written is tagged with it: `<run> <pod> <task> line <n>`

    def get(self, path: str, headers: Mapping[str, str]) -> httpx.Response:
        return httpx.get(self.base + path, headers=dict(headers), timeout=DEADLINE)


def ship(namespace: str, task: PodTaskDef, lines: list[str]) -> None:
    """`lines` on the task's stdout, as the shipper runs a pod task: its CONTAINER_ID is the
    joined chain, and its TASK_ID is what tells it from the instance's other tasks."""
    argv = logway_argv(
        "ship",
        f"--journal-namespace={namespace}",
        f"--agent-id={task.agent_id}",
        f"--framework-id={task.framework_id}",
        f"--executor-id={task.executor}",
        f"--container-id={task.container}",
        f"--task-id={task.task_id}",
        "--identifier=pod-test",
        "--",
        "printf",
        "".join(f"{line}\n" for line in lines),
    )
    subprocess.run(argv, check=True, timeout=DEADLINE)


def lines_of(task: PodTaskDef, run: str) -> list[str]:
    return [f"{run} {task.pod} {task.name} line {n}" for n in range(3)]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("pod-tasks")
    port = port_free_on((AGENT_HOST,))
    cluster = SimCluster(master_id=MASTER_ID)
    cluster.agents = [SimAgent(AGENT, AGENT_HOST)]
    cluster.frameworks = [SimFramework(MARATHON, "marathon", role="dev")]
    cluster.tasks = [pod.sim() for pod in PODS]
    log = tmp / "gateway.log"
    with contextlib.ExitStack() as stack:
        ns = stack.enter_context(JournaldNamespace(new_namespace_name()))
        sim = stack.enter_context(MesosSimulator(cluster, masters=[(MESOS_HOST, 0)]))
        try:
            base = stack.enter_context(
                support_gateway(
                    tmp / "gateway",
                    f"--mesos={sim.urls[0]}",
                    f"--reader-port={port}",
                    password=PASSWORD,
                    host=GATEWAY_HOST,
                    log_path=log,
                )
            )
            reader = Reader(ns.name, AGENT_HOST, port, f"{base}/acs/api/v1/auth/jwks")
            stack.callback(reader.stop)
            reader.start()
            admin = login(base, "admin", PASSWORD)
            add_user(base, admin, GATEWAY_UID, "gateway test password")
            dev = add_user(base, admin, "dev", "dev password")
            grant(base, admin, "dcos:mesos:agent:task:app_id:/dev", "dev")
            run = uuid.uuid4().hex
            for pod in PODS:
                ship(ns.name, pod, lines_of(pod, run))
            ns.sync()
            built = Env(base, admin, dev, run)
            wait_for(
                "the gateway's first cluster state",
                lambda: built.get(paths_of(DEV_STEP)[2], admin).status_code == 200 or None,
                timeout=DEADLINE,
            )
            yield built
        except BaseException:
            print(f"--- gateway.log ---\n{log.read_text(errors='replace')[-LOG_TAIL:]}")
            raise


def pod_path(task: PodTaskDef, *, executor: str = "", run: str = "", task_id: str = "") -> str:
    return (
        f"/system/v1/agent/{task.agent_id}/logs/v2/task/frameworks/{task.framework_id}"
        f"/executors/{executor or task.executor}/runs/{run or task.parent}"
        f"/tasks/{task_id or task.task_id}/stdout"
    )


def paths_of(task: PodTaskDef) -> list[str]:
    """Every path that names the pod task as a whole."""
    return [
        pod_path(task),
        f"/system/v1/agent/{task.agent_id}/logs/v1/range/framework/{task.framework_id}"
        f"/executor/{task.executor}/container/{task.container}",
        f"/system/v1/logs/v2/task/{task.task_id}/file/stdout",
    ]


@pytest.mark.parametrize("task", [DEV_STEP, DEV_CHECK], ids=["step", "check"])
def test_a_pod_task_is_served_its_own_lines_on_every_path_naming_it(
    env: Env, task: PodTaskDef
) -> None:
    for path in paths_of(task):
        r = env.get(path, env.dev)
        assert r.status_code == 200, (path, r.status_code, r.text)
        # v1's text lines start with their time: compare from the run tag on.
        messages = [line[line.find(env.run) :] for line in r.text.splitlines()]
        assert messages == lines_of(task, env.run), path


@pytest.mark.parametrize(
    "path",
    [
        *paths_of(PROD_STEP),
        # The /dev instance's executor and run container with /prod's task id, and the
        # /prod task's id and run under the /dev executor: no task is named as a whole.
        pod_path(DEV_STEP, task_id=PROD_STEP.task_id),
        pod_path(PROD_STEP, executor=DEV_STEP.executor),
        pod_path(DEV_STEP, run=PROD_STEP.parent),
    ],
    ids=["v2", "v1", "by-id", "dev-run-prod-task", "dev-executor", "prod-run"],
)
def test_another_apps_pod_task_is_refused_on_every_path(env: Env, path: str) -> None:
    r = env.get(path, env.dev)
    assert r.status_code == 403, (path, r.status_code, r.text)
    assert PROD_STEP.task_id not in r.text
    assert "line" not in r.text
    assert env.get(path, env.admin).status_code in (200, 204)  # it exists, for system-logs


@pytest.mark.parametrize(
    "tail",
    [
        "/tasks/",
        "/tasks",
        f"/tasks/{DEV_STEP.task_id}",
        f"/tasks/{DEV_STEP.task_id}/stdin",
        f"/tasks/{DEV_STEP.task_id}/stdout/more",
        # An escaped `/` would make the task id another path to the node than to the gateway.
        f"/tasks/{DEV_STEP.task_id}%2Fstdout",
        f"/tasks/{DEV_STEP.task_id}%2F..%2F{PROD_STEP.task_id}/stdout",
        f"/tasks/{PROD_STEP.task_id}%2F..%2F{DEV_STEP.task_id}/stdout",
    ],
)
def test_a_malformed_pod_path_is_a_4xx(env: Env, tail: str) -> None:
    path = pod_path(DEV_STEP).replace(f"/tasks/{DEV_STEP.task_id}/stdout", tail)
    for headers in (env.dev, env.admin):
        r = env.get(path, headers)
        assert 400 <= r.status_code < 500, (path, r.status_code, r.text)
