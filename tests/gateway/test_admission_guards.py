"""Admission from the attacker's side (app/gateway/admission.py): a task route is decided on
the task its whole path names, never on a readable task that shares part of it; an unknown or
ambiguous task tells a caller nothing about tasks it may not read. On the merge test cluster's
snapshot (tests/merge/support.py) with a real ACL authorizer."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

import pytest

from app.authn import Identity
from app.authz.acl import AclAuthorizer
from app.authz.model import Action
from app.authz.route_table import MergedTasks, TaskAccess, authorize_any
from app.cluster import Agent, ClusterSnapshot, Task, build_snapshot
from app.cluster.errors import ambiguous
from app.core.errors import Forbidden, LogwayError, NotFound
from app.devcluster.mesos import SimMaster, StateDocument
from app.gateway.admission import Target, admit
from app.gateway.services import GatewayServices
from tests.authz.conftest import FakeGrantSource
from tests.merge.support import AGENTS, DEV, DEVOPS, MARATHON, PRODUCTION, WEB, sim_cluster
from tests.support.tasks import PodTaskDef

# Two pod instances on S0 (reference §8: a task group in the default executor's container):
# /dev/batch's tasks `step` and `check`, /prod/batch's `step`.
DEV_STEP, DEV_CHECK = (
    PodTaskDef("/dev/batch", "dev", AGENTS[0], "d1", n, MARATHON) for n in ("step", "check")
)
PROD_STEP = PodTaskDef("/prod/batch", "prod", AGENTS[0], "p1", "step", MARATHON)
PODS = (DEV_STEP, DEV_CHECK, PROD_STEP)


class Cluster:
    def __init__(self) -> None:
        cluster = sim_cluster()
        cluster.tasks += [pod.sim() for pod in PODS]
        body = StateDocument.from_cluster(cluster).state(SimMaster("127.0.0.85", 5050))
        self._snapshot = build_snapshot(body, reader_scheme="http", reader_port=61001)

    async def snapshot(self) -> ClusterSnapshot:
        return self._snapshot

    async def resolve_agent(self, agent_id: str) -> Agent:
        agent = self._snapshot.agent(agent_id)
        if agent is None:
            raise NotFound(f"agent `{agent_id}` unknown")
        return agent

    async def find_task(self, query: str) -> Task:  # as ClusterState.find_task
        found = self._snapshot.find_tasks(query)
        if not found:
            raise NotFound(f"task `{query}` not found")
        if len(found) > 1:
            raise ambiguous(query, tuple(task.id for task in found))
        return found[0]


GRANTS = {
    "dev": "dcos:mesos:agent:task:app_id:/dev",
    "prodrole": "dcos:mesos:agent:framework:role:prod",
    "ops": "dcos:adminrouter:ops:system-logs",
}


def services() -> GatewayServices:
    source = FakeGrantSource()
    for uid, rid in GRANTS.items():
        source.grant(uid, rid, Action.READ)
    fake = {"cluster": Cluster(), "authorizer": AclAuthorizer(source)}
    return cast(GatewayServices, type("S", (), fake))


async def admit_as(uid: str, path: str) -> Target:
    return await admit(path, Identity(uid), services())


def v1(agent: str, executor: str, container: str, framework: str = MARATHON) -> str:
    return (
        f"/system/v1/agent/{agent}/logs/v1/range/framework/{framework}"
        f"/executor/{executor}/container/{container}"
    )


async def test_the_own_task_is_admitted_on_its_own_path() -> None:
    target = await admit_as("dev", v1(DEV.agent_id, DEV.executor, DEV.container))
    assert target.task is not None
    assert target.task.id == DEV.task_id


@pytest.mark.parametrize(
    "path",
    [
        # The own task's executor with a foreign container on the same agent.
        v1(DEV.agent_id, DEV.executor, WEB[0].container),
        # A foreign executor with the own container.
        v1(DEV.agent_id, WEB[0].executor, DEV.container),
        # The own task's ids on an agent it does not run on (that agent's journal).
        v1(AGENTS[1], DEV.executor, DEV.container),
        v1(DEV.agent_id, DEV.executor, DEV.container, framework="other-framework"),
        # v2 forms: a foreign run beside the own executor.
        f"/system/v1/agent/{DEV.agent_id}/logs/v2/task/frameworks/{MARATHON}"
        f"/executors/{DEV.executor}/runs/{WEB[0].container}/stdout",
    ],
)
async def test_a_path_mixing_own_and_foreign_ids_is_decided_as_not_the_own_task(
    path: str,
) -> None:
    with pytest.raises(Forbidden):
        await admit_as("dev", path)
    target = await admit_as("ops", path)  # system-logs reads it as whatever it names
    assert target.task is None or target.task.id != DEV.task_id


async def test_an_unknown_task_is_403_to_whoever_could_not_read_it_if_it_existed() -> None:
    path = "/system/v1/logs/v2/task/no-such-task/file/stdout"
    with pytest.raises(Forbidden) as caught:
        await admit_as("dev", path)
    assert "no-such-task" not in str(caught.value)
    with pytest.raises(NotFound):
        await admit_as("ops", path)


async def test_an_ambiguous_name_lists_only_the_tasks_the_caller_may_read() -> None:
    path = "/system/v1/logs/v2/task/api/file/stdout"  # /devops/api and /production/api
    with pytest.raises(LogwayError) as caught:
        await admit_as("prodrole", path)
    assert caught.value.status == 409
    assert PRODUCTION.task_id in str(caught.value)
    assert DEVOPS.task_id not in str(caught.value)
    with pytest.raises(Forbidden) as denied:
        await admit_as("dev", path)
    assert "api" not in str(denied.value).replace("app_id", "")


def v2(agent: str, executor: str, container: str) -> str:
    return (
        f"/system/v1/agent/{agent}/logs/v2/task/frameworks/{MARATHON}"
        f"/executors/{executor}/runs/{container}/stdout"
    )


@pytest.mark.parametrize("form", [v1, v2], ids=["v1", "v2"])
async def test_the_target_carries_its_agent_and_what_a_stream_is_decided_on_again(
    form: Callable[[str, str, str], str],
) -> None:
    # A follow's lease re-decides these checks on every IAM change (app/gateway/logs.py):
    # no checks would mean "nothing to revoke", so a revoked caller's stream would go on.
    source = FakeGrantSource()
    source.grant("dev", GRANTS["dev"], Action.READ)
    authorizer = AclAuthorizer(source)
    fake = {"cluster": Cluster(), "authorizer": authorizer}
    svc = cast(GatewayServices, type("S", (), fake))
    target = await admit(form(DEV.agent_id, DEV.executor, DEV.container), Identity("dev"), svc)
    assert target.agent is not None
    assert target.agent.id == DEV.agent_id
    assert target.checks
    assert (await authorize_any(authorizer, "dev", target.checks)).allowed
    source.revoke("dev", GRANTS["dev"], Action.READ)
    assert not (await authorize_any(authorizer, "dev", target.checks)).allowed


async def test_a_role_grant_admits_its_task_and_a_target_names_caller_rule_and_path() -> None:
    path = v1(WEB[1].agent_id, WEB[1].executor, WEB[1].container)
    target = await admit_as("prodrole", path)
    assert target.uid == "prodrole"
    assert isinstance(target.rule.requirement, TaskAccess)
    assert target.params["container_id"] == WEB[1].container
    assert target.task is not None
    assert target.task.id == WEB[1].task_id


@pytest.mark.parametrize(
    ("path", "agent"),
    [
        (f"/system/v1/agent/{AGENTS[0]}/logs/v1/range/", AGENTS[0]),
        ("/system/v1/logs/v1/range/", None),
    ],
    ids=["agent", "master"],
)
async def test_a_whole_journal_needs_system_logs_and_goes_to_the_node_its_path_names(
    path: str, agent: str | None
) -> None:
    target = await admit_as("ops", path)
    assert (target.agent.id if target.agent else None) == agent
    assert target.checks
    with pytest.raises(Forbidden, match="dcos:adminrouter:ops:system-logs"):
        await admit_as("dev", path)


async def test_a_merged_route_is_admitted_for_its_plan_to_decide() -> None:
    target = await admit_as("nobody", "/system/v1/logs/v1/role/dev/range/")
    assert target.uid == "nobody"
    assert isinstance(target.rule.requirement, MergedTasks)
    assert target.params["role"] == "dev"


def pod_path(task: PodTaskDef, *, executor: str = "", run: str = "", task_id: str = "") -> str:
    """dcos-log v2's pod task file: `runs/<the executor's container>/tasks/<task id>/stdout`."""
    return (
        f"/system/v1/agent/{task.agent_id}/logs/v2/task/frameworks/{task.framework_id}"
        f"/executors/{executor or task.executor}/runs/{run or task.parent}"
        f"/tasks/{task_id or task.task_id}/stdout"
    )


@pytest.mark.parametrize("task", [DEV_STEP, DEV_CHECK], ids=["step", "check"])
async def test_a_pod_task_is_admitted_as_itself_on_each_of_its_paths(task: PodTaskDef) -> None:
    # Both of the instance's tasks share executor and run container: only the task id in the
    # path tells them apart (the node reader then reads that TASK_ID alone).
    paths = [
        pod_path(task),
        v1(task.agent_id, task.executor, task.container),  # the joined chain
        f"/system/v1/logs/v2/task/{task.task_id}/file/stdout",
    ]
    for path in paths:
        target = await admit_as("dev", path)
        assert target.task is not None, path
        assert target.task.id == task.task_id, path
        assert target.task.app_id == "/dev/batch"


@pytest.mark.parametrize(
    "path",
    [
        # The own instance's executor and run, another pod's task (or none of its tasks).
        pod_path(DEV_STEP, task_id=PROD_STEP.task_id),
        pod_path(DEV_STEP, task_id=f"{DEV_STEP.task_id}x"),
        # The own task on another instance's run container, or under another executor.
        pod_path(DEV_STEP, run=PROD_STEP.parent),
        pod_path(DEV_STEP, executor=PROD_STEP.executor),
        pod_path(DEV_STEP, run=DEV_STEP.container),  # the joined chain is v1's, not a run
        # v1 names the whole chain: the executor's container alone is not the task's.
        v1(DEV_STEP.agent_id, DEV_STEP.executor, DEV_STEP.parent),
        v1(DEV_STEP.agent_id, DEV_STEP.executor, DEV_STEP.container.split(".")[1]),
        # A pod path without its task id (`//` never reaches a rule: 404).
        pod_path(DEV_STEP).replace(f"/tasks/{DEV_STEP.task_id}/stdout", "/tasks/"),
    ],
    ids=[
        "foreign-task",
        "unknown-task",
        "foreign-run",
        "foreign-executor",
        "joined-run",
        "v1-parent",
        "v1-own-part",
        "no-task-id",
    ],
)
async def test_a_pod_path_not_naming_a_readable_task_as_a_whole_is_refused(path: str) -> None:
    with pytest.raises(Forbidden):
        await admit_as("dev", path)
    target = await admit_as("ops", path)  # system-logs reads it as whatever it names
    assert target.task is None


async def test_another_apps_pod_task_is_refused_and_its_own_readers_admitted() -> None:
    with pytest.raises(Forbidden):
        await admit_as("dev", pod_path(PROD_STEP))
    target = await admit_as("prodrole", pod_path(PROD_STEP))
    assert target.task is not None
    assert target.task.id == PROD_STEP.task_id


async def test_a_pod_task_name_shared_by_two_pods_lists_only_the_readable_one() -> None:
    with pytest.raises(LogwayError) as caught:
        await admit_as("dev", "/system/v1/logs/v2/task/step/file/stdout")
    assert caught.value.status == 409
    assert DEV_STEP.task_id in str(caught.value)
    assert PROD_STEP.task_id not in str(caught.value)


DENIED = f"`dev` lacks the permission this route needs: {TaskAccess().describe()}"


@pytest.mark.parametrize(
    "path",
    [
        "/system/v1/logs/v2/task/no-such-task/file/stdout",  # unknown
        "/system/v1/logs/v2/task/api/file/stdout",  # ambiguous, none of them readable
        f"/system/v1/logs/v2/task/{PRODUCTION.task_id}/file/stdout",  # exists, not readable
        v1(PRODUCTION.agent_id, PRODUCTION.executor, PRODUCTION.container),
        pod_path(PROD_STEP),
    ],
    ids=["unknown", "ambiguous", "foreign-by-id", "foreign-v1", "foreign-pod"],
)
async def test_a_refused_task_route_says_the_same_words_whatever_the_task(path: str) -> None:
    # Whether a task exists, or what it is, is not told by the refusal's wording either.
    with pytest.raises(Forbidden) as caught:
        await admit_as("dev", path)
    assert str(caught.value) == DENIED


async def test_an_ambiguous_name_and_a_malformed_agent_are_named_in_the_answer() -> None:
    with pytest.raises(LogwayError) as caught:
        await admit_as("dev", "/system/v1/logs/v2/task/step/file/stdout")
    assert str(caught.value).startswith("found more than 1 task matching `step`: ")
    with pytest.raises(NotFound) as unknown:
        await admit_as("ops", "/system/v1/agent/no_such.agent/logs/v1/range/")
    assert str(unknown.value) == "agent `no_such.agent` unknown"
