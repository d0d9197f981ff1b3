"""Discovery routes the dcos CLI needs (reference §7): capabilities, cluster metadata and the
Mesos state, served from the gateway's snapshot and filtered to what the caller may see.

Every route needs a token (401 first) and is admitted on its route table rule
(`app.gateway.admission`). The Mesos documents are rendered from the snapshot, never
fetched for the client, and what a caller sees of them is decided here, per object, the way
Mesos's own authorization filters its `/state` (VIEW_FRAMEWORK, VIEW_TASK, VIEW_EXECUTOR,
VIEW_FLAGS):

* a holder of `dcos:adminrouter:ops:system-logs` read (superusers too) sees the document as
  Mesos gave it;
* anyone else sees the cluster's structure, which carries no task data: every agent (the CLI
  looks each task's agent up in `slaves`) and every framework's own fields (id, name, role,
  user, resources); and the task data of exactly the tasks whose logs they may read
  (`requirements_for_task`): `tasks`, `unreachable_tasks`, `completed_tasks`, `orphan_tasks`,
  the frameworks' `executors` of those tasks, the task counts of the summary, the executors of
  an agent's state. The master's `flags` and the frameworks' `offers` are left out.

Decisions are made once per distinct (app id, role) pair of the snapshot, not once per task,
and each resource id is asked once per request.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import orjson
from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from app.authz import Action, Authorizer, Decision, authorize_any, requirements_for_task
from app.authz.route_table import SYSTEM_LOGS
from app.cluster import ClusterSnapshot, Task
from app.cluster.model import StatePath
from app.core.errors import NotFound
from app.gateway.deps import ServicesDep, TargetDep
from app.gateway.services import GatewayServices

router = APIRouter()

# Cosmos's media type: the CLI requires the Content-Type to contain what it sent as Accept.
CAPABILITIES_TYPE = "application/vnd.dcos.capabilities+json;charset=utf-8;version=v1"
# Only what is served here: PACKAGE_MANAGEMENT or METRONOME would send the CLI to APIs that
# are not. The CLI tests `{"name": "LOGGING"} in capabilities`, so the entries have no more keys.
CAPABILITIES = {"capabilities": [{"name": "LOGGING"}, {"name": "LOGGING_V2"}]}
# `dcos task log` reads journald (dcos-log v1) only when this is exactly "journald".
UI_CONFIG = {"uiConfiguration": {"plugins": {"mesos": {"logging-strategy": "journald"}}}}
JSON = "application/json"

TASK_LISTS = ("tasks", "unreachable_tasks", "completed_tasks")
ADMIN_ONLY_KEYS = frozenset({"flags"})  # Mesos's VIEW_FLAGS
TASK_STATES = (
    "TASK_STAGING", "TASK_STARTING", "TASK_RUNNING", "TASK_KILLING", "TASK_FINISHED",
    "TASK_KILLED", "TASK_FAILED", "TASK_LOST", "TASK_ERROR", "TASK_UNREACHABLE",
)  # fmt: skip
SUMMARY_FRAMEWORK_KEYS = (
    "id", "name", "pid", "used_resources", "offered_resources", "capabilities", "hostname",
    "webui_url", "active", "connected", "recovered",
)  # fmt: skip
AGENT_KEYS = (
    "id", "pid", "hostname", "port", "version", "capabilities", "resources", "attributes",
    "domain", "reserved_resources", "unreserved_resources",
)  # fmt: skip
AGENT_FRAMEWORK_KEYS = (
    "id", "name", "user", "failover_timeout", "checkpoint", "hostname", "role", "roles",
    "principal", "capabilities", "labels",
)  # fmt: skip
# DC/OS's Mesos agent `work_dir`: the sandbox paths an agent would report.
SANDBOX_ROOT = "/var/lib/mesos/slave"

AccessKey = tuple[str | None, str]  # (app id, role): all `requirements_for_task` looks at


@dataclass(frozen=True, slots=True)
class Visibility:
    """The tasks one caller may see: all (`readable` None), or those whose access key it may
    read."""

    readable: frozenset[AccessKey] | None

    def sees(self, task: Task) -> bool:
        return self.readable is None or (task.app_id, task.role) in self.readable


async def visibility(uid: str, authorizer: Authorizer, snapshot: ClusterSnapshot) -> Visibility:
    """Decided once per distinct access key of the snapshot, each resource id asked once."""
    memo = _Memo(authorizer)
    if (await authorize_any(memo, uid, (SYSTEM_LOGS,))).allowed:
        return Visibility(None)
    keys = await run_in_threadpool(_access_keys, snapshot.all_tasks)
    readable = set()
    for app_id, role in keys:
        if (await authorize_any(memo, uid, requirements_for_task(app_id, role))).allowed:
            readable.add((app_id, role))
    return Visibility(frozenset(readable))


def _access_keys(tasks: Iterable[Task]) -> set[AccessKey]:
    return {(task.app_id, task.role) for task in tasks}


class _Memo:
    """One request's decisions: tasks of many apps share a role rid, and all of them the
    system-logs rid. A failure is not remembered (`authorize_any` decides what it means)."""

    def __init__(self, authorizer: Authorizer) -> None:
        self._authorizer = authorizer
        self._decided: dict[tuple[str, str, Action], Decision] = {}

    async def authorize(self, uid: str, rid: str, action: Action) -> Decision:
        key = (uid, rid, action)
        decision = self._decided.get(key)
        if decision is None:
            decision = self._decided[key] = await self._authorizer.authorize(uid, rid, action)
        return decision


@router.get("/capabilities")
async def capabilities(target: TargetDep) -> Response:
    """Cosmos's capabilities, as far as Logway has them (the dcos CLI's log switches)."""
    return Response(orjson.dumps(CAPABILITIES), media_type=CAPABILITIES_TYPE)


@router.get("/dcos-metadata/ui-config.json")
async def ui_config(target: TargetDep) -> Response:
    return Response(orjson.dumps(UI_CONFIG), media_type=JSON)


@router.get("/dcos-metadata/dcos-version.json")
async def dcos_version(target: TargetDep) -> Response:
    """DC/OS's version document, describing Logway: there is no DC/OS image or bootstrap."""
    return Response(orjson.dumps(_version_document()), media_type=JSON)


@router.get("/dcos-metadata{rest:path}")
async def other_metadata(rest: str, target: TargetDep) -> Response:
    raise NotFound(f"no cluster metadata at `/dcos-metadata{rest}`")


@functools.cache
def _version_document() -> dict[str, str | None]:
    return {
        "version": metadata.version("logway"),
        "dcos-variant": "open",
        "dcos-image-commit": None,
        "bootstrap-id": None,
    }


# Mesos-DNS names the gateway can answer from the snapshot: the leader, and every master.
MASTER_NAMES = ("leader.mesos", "master.mesos")
MASTER_ALL = "master.mesos"


@router.get("/mesos_dns/v1/hosts/{host}")
async def mesos_dns_hosts(host: str, target: TargetDep, services: ServicesDep) -> Response:
    """Mesos-DNS `v1/hosts/<name>` for the masters (`dcos node` lists them), from the
    snapshot: `leader.mesos` the leader, `master.mesos` every master the gateway knows (the
    leader first, then those it polls by IP address; `logway forward cluster` reads each
    one's journal); any other name is an empty list, as Mesos-DNS answers for a name it has
    no record of."""
    name = host.rstrip(".")
    records = []
    if name in MASTER_NAMES:
        leader = await services.cluster.resolve_leader()
        masters = [leader]
        if name == MASTER_ALL:
            snapshot = await services.cluster.snapshot()
            masters += [m for m in snapshot.masters if m.ip != leader.ip]
        records = [{"host": name + ".", "ip": m.ip} for m in masters]
    return Response(orjson.dumps(records), media_type=JSON)


@router.get("/mesos/master/state")
@router.get("/mesos/master/state.json")
async def master_state(target: TargetDep, services: ServicesDep) -> Response:
    """The leading master's `/master/state`, as of the gateway's snapshot."""
    body = await _render(visible_state, target.uid, services)
    return Response(body, media_type=JSON)


@router.get("/mesos/master/state-summary")
async def master_state_summary(target: TargetDep, services: ServicesDep) -> Response:
    """`/master/state-summary`, computed from the snapshot's state (`dcos node`)."""
    body = await _render(state_summary, target.uid, services)
    return Response(body, media_type=JSON)


@router.get("/slave/{agent_id}/state.json")
@router.get("/agent/{agent_id}/state.json")
async def agent_state_route(agent_id: str, target: TargetDep, services: ServicesDep) -> Response:
    """An agent's own `/state` in the shape the dcos CLI reads executors from, synthesized
    from the master's state: the agents themselves are never asked."""
    await services.cluster.resolve_agent(agent_id)  # 404 malformed or unknown (after one refresh)
    body = await _render(agent_state, target.uid, services, agent_id)
    if body is None:  # gone from a snapshot loaded meanwhile
        raise NotFound(f"agent `{agent_id}` unknown")
    return Response(body, media_type=JSON)


async def _render(
    render: Callable[..., object],
    uid: str,
    services: GatewayServices,
    *args: str,
) -> bytes | None:
    """`render(snapshot, visibility, *args)` as JSON; None when it renders None."""
    snapshot = await services.cluster.snapshot()
    seen = await visibility(uid, services.authorizer, snapshot)
    # A big cluster's state is megabytes: filter and encode it off the event loop.
    return await run_in_threadpool(_encode, render, snapshot, seen, *args)


def _encode(render: Callable[..., object], *args: Any) -> bytes | None:
    document = render(*args)
    return None if document is None else orjson.dumps(document)


# Renderings. Pure and blocking; they copy what they change and never mutate the snapshot.


def visible_state(snapshot: ClusterSnapshot, seen: Visibility) -> Mapping[str, Any]:
    state = snapshot.state
    if seen.readable is None:
        return state
    document = {key: value for key, value in state.items() if key not in ADMIN_ONLY_KEYS}
    for key in ("frameworks", "completed_frameworks"):
        if key in state:
            document[key] = [
                _visible_framework(snapshot, seen, (key, index), framework)
                for index, framework in enumerate(_list(state, key))
            ]
    if "orphan_tasks" in state:
        document["orphan_tasks"] = [
            task
            for index, task in enumerate(_list(state, "orphan_tasks"))
            if _shown(snapshot, seen, ("orphan_tasks", index))
        ]
    return document


def _visible_framework(
    snapshot: ClusterSnapshot, seen: Visibility, path: StatePath, framework: Mapping[str, Any]
) -> dict[str, Any]:
    visible = dict(framework)
    executors: set[tuple[object, object]] = set()  # (executor id, agent id) of tasks shown
    for key in TASK_LISTS:
        if key in framework:
            tasks = _list(framework, key)
            kept = [t for i, t in enumerate(tasks) if _shown(snapshot, seen, (*path, key, i))]
            visible[key] = kept
            executors.update((task.get("executor_id"), task.get("slave_id")) for task in kept)
    if "executors" in framework:
        visible["executors"] = [
            executor
            for executor in _executor_infos(framework)
            if (executor.get("executor_id"), executor.get("slave_id")) in executors
        ]
    if "offers" in framework:
        visible["offers"] = []
    return visible


def _shown(snapshot: ClusterSnapshot, seen: Visibility, path: StatePath) -> bool:
    task = snapshot.task_at.get(path)  # none for a task the index skipped as malformed
    return task is not None and seen.sees(task)


def state_summary(snapshot: ClusterSnapshot, seen: Visibility) -> dict[str, Any]:
    """Mesos's summary: agents and registered frameworks, each with its task counts by state
    and the ids of the others it has tasks with, counting only the tasks the caller sees."""
    by_agent: dict[str, list[Task]] = {}
    by_framework: dict[str, list[Task]] = {}
    for path, task in snapshot.task_at.items():
        if path[0] == "frameworks" and seen.sees(task):
            by_agent.setdefault(task.agent_id, []).append(task)
            by_framework.setdefault(task.framework_id, []).append(task)
    state = snapshot.state
    agents = []
    for agent in _list(state, "slaves"):
        tasks = by_agent.get(agent.get("id", ""), [])
        ids = sorted({task.framework_id for task in tasks})
        agents.append({**agent, **_counts(tasks), "framework_ids": ids})
    frameworks = []
    for framework in _list(state, "frameworks"):
        tasks = by_framework.get(framework.get("id", ""), [])
        summary = {key: framework[key] for key in SUMMARY_FRAMEWORK_KEYS if key in framework}
        ids = sorted({task.agent_id for task in tasks})
        frameworks.append({**summary, **_counts(tasks), "slave_ids": ids})
    document: dict[str, Any] = {"hostname": state.get("hostname")}
    if "cluster" in state:
        document["cluster"] = state["cluster"]
    return document | {"slaves": agents, "frameworks": frameworks}


def _counts(tasks: list[Task]) -> dict[str, int]:
    counts = dict.fromkeys(TASK_STATES, 0)
    for task in tasks:
        if task.state in counts:
            counts[task.state] += 1
    return counts


def agent_state(
    snapshot: ClusterSnapshot, seen: Visibility, agent_id: str
) -> dict[str, Any] | None:
    """The agent's frameworks, each with its executors (one per executor run, told apart by
    the run's container), each with the tasks it ran. An executor with a running task is
    current, one with only finished tasks completed; a completed framework's are completed."""
    state = snapshot.state
    agent = next((a for a in _list(state, "slaves") if a.get("id") == agent_id), None)
    if agent is None:
        return None
    runs: dict[tuple[StatePath, str, str], dict[str, Any]] = {}
    for path, task in snapshot.task_at.items():
        if task.agent_id != agent_id or path[0] == "orphan_tasks" or not seen.sees(task):
            continue
        framework_path = path[:2]
        key = (framework_path, task.executor_id, task.run_container_id)
        executor = runs.get(key)
        if executor is None:
            executor = runs[key] = _executor(_at(state, framework_path), task)
        executor["completed_tasks" if task.completed else "tasks"].append(_at(state, path))
    by_framework: dict[StatePath, tuple[list[Any], list[Any]]] = {}
    for (framework_path, _, _), executor in runs.items():
        current, completed = by_framework.setdefault(framework_path, ([], []))
        (current if executor["tasks"] else completed).append(executor)
    frameworks, completed_frameworks = [], []
    for framework_path, (current, completed) in by_framework.items():
        framework = _at(state, framework_path)
        entry = {key: framework[key] for key in AGENT_FRAMEWORK_KEYS if key in framework}
        if framework_path[0] == "completed_frameworks":
            entry |= {"executors": [], "completed_executors": current + completed}
            completed_frameworks.append(entry)
        else:
            frameworks.append(entry | {"executors": current, "completed_executors": completed})
    return {
        **{key: agent[key] for key in AGENT_KEYS if key in agent},
        "master_hostname": state.get("hostname"),
        "frameworks": frameworks,
        "completed_frameworks": completed_frameworks,
    }


def _executor(framework: Mapping[str, Any], task: Task) -> dict[str, Any]:
    info: Mapping[str, Any] = {}
    if not task.command_executor:
        info = next(
            (
                executor
                for executor in _executor_infos(framework)
                if executor.get("executor_id") == task.executor_id
                and executor.get("slave_id") == task.agent_id
            ),
            {},
        )
    # Mesos links `runs/latest` to an executor's latest run.
    run = task.run_container_id or "latest"
    directory = (
        f"{SANDBOX_ROOT}/slaves/{task.agent_id}/frameworks/{task.framework_id}"
        f"/executors/{task.executor_id}/runs/{run}"
    )
    return {
        "id": task.executor_id,
        "name": info.get("name", ""),
        "source": info.get("source", ""),
        "container": task.run_container_id,
        "directory": directory,
        "tasks": [],
        "queued_tasks": [],
        "completed_tasks": [],
    }


def _at(state: Mapping[str, Any], path: StatePath) -> Any:
    found: Any = state
    for step in path:
        found = found[step]
    return found


def _list(document: Mapping[str, Any], key: str) -> list[Any]:
    # The index made sure the lists it reads hold objects: agents, frameworks and tasks. The
    # positions must stay those of the document: they are what `task_at` keys on.
    value = document.get(key)
    return value if isinstance(value, list) else []


def _executor_infos(framework: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    # Not read by the index, so not checked either.
    return [info for info in _list(framework, "executors") if isinstance(info, dict)]
