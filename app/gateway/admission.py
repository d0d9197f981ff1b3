"""Admission: what a request asks for, resolved once and authorized before its handler runs.

The Kubernetes apiserver's shape: the request is first resolved into what it asks for (its rule
in `app.authz.route_table`, the agent and task its path names), then the route's requirement
is decided on that, once, by one dependency (`app.gateway.deps.TargetDep`); the handler
receives the resolved `Target` and never re-matches its path or re-reads the Mesos snapshot.

Order, as before: 401 (the caller dependency), 404 for a path no rule matches or a malformed
agent id, 403 naming what is missing, then the agent's resolution (404 unknown, 503). A task
route's task is looked up before the decision, since its app id and role are what open it;
whether it exists is never told to a caller who could not read it (`_find_task`).

The rule lookup and its decision are the one authorization step (`app.authz.gate`), which the
embedded IAM's routes pass too (`app.iam.deps`); the IAM's routes forwarded to a remote IAM are
decided there. Every route served has a rule (`check_routes`, at startup).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from app.authn import Identity
from app.authz import authorize_any, requirements_for_task
from app.authz.gate import require, rule_for
from app.authz.route_table import (
    SYSTEM_LOGS,
    Authenticated,
    MergedTasks,
    Public,
    ResourceCheck,
    RouteRule,
    TaskAccess,
)
from app.cluster import Agent, Ambiguous, ClusterSnapshot, Task
from app.cluster.errors import ambiguous
from app.core.errors import Forbidden, NotFound
from app.gateway.services import GatewayServices

AGENT_ID = re.compile(r"[0-9a-zA-Z-]+")  # Admin Router's agent location; others never route


@dataclass(frozen=True, slots=True)
class Target:
    """What an admitted request asks for: its rule and path parameters, and, where the path
    names them, the task (task routes, when it is known) and the agent (resolved)."""

    caller: Identity
    rule: RouteRule
    params: Mapping[str, str] = field(default_factory=dict)
    task: Task | None = None
    agent: Agent | None = None
    # What the decision was taken on (any one suffices); an open stream is decided on it
    # again when the IAM changes (app.authz.access). Empty: no resource decision here.
    checks: tuple[ResourceCheck, ...] = ()

    @property
    def uid(self) -> str:
        return self.caller.uid


async def admit(path: str, caller: Identity, services: GatewayServices) -> Target:
    """Resolve `path` (decoded) into its `Target` and decide its rule for `caller`."""
    matched = rule_for(path)
    rule, params = matched.rule, matched.params
    requirement = rule.requirement
    # Merged reads decide per task, in their plan (app.merge.plan).
    if isinstance(requirement, Public | Authenticated | MergedTasks):
        return Target(caller, rule, params)
    agent_id = params.get("agent_id")
    if agent_id is not None and not AGENT_ID.fullmatch(agent_id):
        raise NotFound(f"agent `{agent_id}` unknown")
    task: Task | None = None
    snapshot: ClusterSnapshot | None = None
    checks: tuple[ResourceCheck, ...]
    if isinstance(requirement, TaskAccess):
        if "task_id" in params:  # by id or name, on the master's route
            task = await _find_task(params["task_id"], caller.uid, services)
        elif agent_id is not None:  # on the master's own journal no task runs
            snapshot = await services.cluster.snapshot()
            task = _task_on(snapshot, agent_id, params)
        checks = requirements_for_task(task.app_id, task.role) if task else (SYSTEM_LOGS,)
        if not (await authorize_any(services.authorizer, caller.uid, checks)).allowed:
            raise Forbidden(_task_denied(caller.uid))
    else:
        checks = requirement.checks
        await require(services.authorizer, caller.uid, checks)
    agent = None
    if agent_id is not None:
        # From the snapshot just decided on; a resolution refreshes for an unknown agent.
        agent = snapshot.agent(agent_id) if snapshot is not None else None
        if agent is None:
            agent = await services.cluster.resolve_agent(agent_id)
    return Target(caller, rule, params, task=task, agent=agent, checks=checks)


def _task_on(snapshot: ClusterSnapshot, agent_id: str, params: Mapping[str, str]) -> Task | None:
    """The one known task a task route's path names on `agent_id`, or None (a whole-journal
    read). v1 names the joined container chain; v2 `runs/<id>/<file>` the task's container
    (joined chain, or a pod's outermost one), `runs/<outer>/tasks/<task id>/<file>` a pod's
    task."""
    framework_id = params.get("framework_id")
    executor_id = params.get("executor_id")
    container_id = params.get("container_id")
    if not (framework_id and executor_id and container_id):
        return None
    file = params.get("file")
    pod_task = None
    if file is not None and file.startswith("/tasks/"):
        pod_task = file.split("/")[2]
    for task in snapshot.all_tasks:
        if not (
            task.agent_id == agent_id
            and task.framework_id == framework_id
            and task.executor_id == executor_id
        ):
            continue
        if file is None:
            matched = task.container_id == container_id
        elif pod_task is not None:
            matched = task.id == pod_task and task.run_container_id == container_id
        else:
            matched = container_id in (task.container_id, task.run_container_id)
        if matched:
            return task
    return None


async def _find_task(query: str, uid: str, services: GatewayServices) -> Task:
    """`find_task`, without telling a caller about tasks it may not read: an unknown task is
    403 to whoever could not read it if it existed, and an ambiguous name lists only the
    candidates the caller may read."""
    cluster, authorizer = services.cluster, services.authorizer
    try:
        return await cluster.find_task(query)
    except NotFound:
        if not (await authorize_any(authorizer, uid, (SYSTEM_LOGS,))).allowed:
            raise Forbidden(_task_denied(uid)) from None
        raise
    except Ambiguous as exc:
        snapshot = await cluster.snapshot()
        visible = []
        for task_id in exc.candidates:
            task = snapshot.task(task_id)
            if task is not None:
                checks = requirements_for_task(task.app_id, task.role)
                if (await authorize_any(authorizer, uid, checks)).allowed:
                    visible.append(task_id)
        if not visible:
            raise Forbidden(_task_denied(uid)) from None
        raise ambiguous(query, tuple(visible)) from None


def _task_denied(uid: str) -> str:
    # The same words whether or not the task exists, and without its app id or role.
    return f"`{uid}` lacks the permission this route needs: {TaskAccess().describe()}"
