"""Which agents and containers a merged role or app read covers, for one caller.

From the Mesos snapshot: the role's or app's running and completed tasks (an app id covers
its descendants on `/` boundaries: `/prod` covers `/prod/web`, never `/production`), of
those only the tasks the caller may read (`requirements_for_task`, as on the task routes,
one decision per distinct app id and role), narrowed by the client's filters on the fields
the gateway owns, grouped by agent. Tasks without a container yet have no output to read.

A caller who may read none of them gets 403, with the same words whether or not the role or
app has tasks, unless it holds a grant on the whole role or app: then an empty scope is
simply empty (a 204 range; a stream that waits for tasks to start).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from app.authz import Authorizer, authorize_any, requirements_for_task
from app.authz.route_table import ResourceCheck, TaskAccess
from app.cluster import ClusterSnapshot, ClusterStateSource, Task
from app.cluster.scheduler import MARATHON, SchedulerUnknown, scheduler_node
from app.core.errors import Forbidden
from app.merge.fanin import SCHEDULER_SOURCE, MergePlan, SourceSpec

# Client filters on these fields narrow the task set here and are never forwarded: journald
# ORs values of one field, so a forwarded `CONTAINER_ID:<other>` would widen the read.
OWNED_FIELDS = frozenset({"CONTAINER_ID", "EXECUTOR_ID", "FRAMEWORK_ID", "AGENT_ID"})
MARATHON_UNIT = "dcos-marathon.service"  # what `dcos node log --component=dcos-marathon` reads


@dataclass(frozen=True, slots=True)
class MergeScope:
    kind: str  # "role" or "app"
    value: str

    def covers(self, task: Task) -> bool:
        if self.kind == "role":
            return task.role == self.value
        app = task.app_id
        return app is not None and (app == self.value or app.startswith(self.value + "/"))

    def describe(self) -> str:
        return f"{self.kind} `{self.value}`"

    def whole_scope_checks(self) -> tuple[ResourceCheck, ...]:
        """A grant on the whole role or app (or system-logs): every task of it is readable."""
        if self.kind == "role":
            return requirements_for_task(None, self.value)
        return requirements_for_task(self.value, None)


@dataclass(frozen=True, slots=True)
class Narrowing:
    """The client's filters on `OWNED_FIELDS`: values of one field ORed, fields ANDed."""

    values: Mapping[str, frozenset[str]]

    def admits(self, task: Task) -> bool:
        own = {
            "CONTAINER_ID": task.container_id,
            "EXECUTOR_ID": task.executor_id,
            "FRAMEWORK_ID": task.framework_id,
            "AGENT_ID": task.agent_id,
        }
        return all(own[name] in allowed for name, allowed in self.values.items())


def split_filters(
    filters: list[tuple[str, str]],
) -> tuple[Narrowing, tuple[tuple[str, str], ...]]:
    """(what narrows the task set, what is forwarded to the node readers)."""
    owned: dict[str, set[str]] = {}
    forwarded = []
    for name, value in filters:
        if name in OWNED_FIELDS:
            owned.setdefault(name, set()).add(value)
        else:
            forwarded.append((name, value))
    narrowing = Narrowing(MappingProxyType({k: frozenset(v) for k, v in owned.items()}))
    return narrowing, tuple(forwarded)


def denied(uid: str, scope: MergeScope) -> Forbidden:
    # The same words whether the role or app has tasks or not.
    return Forbidden(
        f"`{uid}` may read no task of {scope.describe()}: each task needs {TaskAccess().describe()}"
    )


class Planner:
    """The caller's plan over the current snapshot; recomputed (and re-authorized) only
    when the snapshot changed or `access_epoch()` did (the IAM changed: app.authz.access),
    so a stream narrows to the tasks still allowed when a grant is revoked."""

    def __init__(
        self,
        scope: MergeScope,
        narrowing: Narrowing,
        uid: str,
        authorizer: Authorizer,
        cluster: ClusterStateSource,
        *,
        forwarded: tuple[tuple[str, str], ...] = (),
        scheduler: bool = False,
        access_epoch: Callable[[], int] = lambda: 0,
    ) -> None:
        self.scope = scope
        self.narrowing = narrowing
        self.uid = uid
        self.forwarded = forwarded  # the client's filters on other fields, for the readers
        # `include=scheduler`: Marathon's lines naming the scope's apps, as one more source
        # (the caller's right to read the Marathon leader's journal is checked before).
        self.scheduler = scheduler
        self._authorizer = authorizer
        self._cluster = cluster
        self._access_epoch = access_epoch
        self._seen: tuple[ClusterSnapshot, int, MergePlan] | None = None

    async def plan(self) -> MergePlan:
        snapshot = await self._cluster.snapshot()
        epoch = self._access_epoch()
        if self._seen is not None and self._seen[0] is snapshot and self._seen[1] == epoch:
            return self._seen[2]
        plan = await self._plan(snapshot)
        self._seen = (snapshot, epoch, plan)
        return plan

    async def _plan(self, snapshot: ClusterSnapshot) -> MergePlan:
        decisions: dict[tuple[str | None, str], bool] = {}
        visible: list[Task] = []
        for task in snapshot.all_tasks:
            if not self.scope.covers(task):
                continue
            key = (task.app_id, task.role)
            if key not in decisions:
                checks = requirements_for_task(task.app_id, task.role)
                decisions[key] = (await authorize_any(self._authorizer, self.uid, checks)).allowed
            if decisions[key]:
                visible.append(task)
        if not visible and not await self._whole_scope():
            raise denied(self.uid, self.scope)
        containers: dict[str, set[str]] = {}
        for task in visible:
            if task.container_id and self.narrowing.admits(task):
                containers.setdefault(task.agent_id, set()).add(task.container_id)
        sources = {}
        for agent_id in sorted(containers):
            agent = snapshot.agent(agent_id)
            if agent is not None:
                specs = tuple(sorted(containers[agent_id]))
                sources[agent_id] = SourceSpec(agent_id, agent.reader_url, specs)
        note = ""
        if self.scheduler:
            try:
                sources[SCHEDULER_SOURCE] = self._scheduler(snapshot)
            except SchedulerUnknown as exc:
                if self._seen is None:
                    raise  # asked for, and unknown from the start: 503 saying why
                note = f"Marathon's lines left out: {exc}"  # a failover under way
        return MergePlan(MappingProxyType(sources), note)

    def _scheduler(self, snapshot: ClusterSnapshot) -> SourceSpec:
        """Marathon's unit on the node it leads from, kept to the lines naming the app (its
        descendants too), or the role's apps."""
        leader = scheduler_node(snapshot, MARATHON)
        if self.scope.kind == "app":
            names: tuple[str, ...] = (self.scope.value,)
        else:
            names = tuple(
                sorted({t.app_id for t in snapshot.all_tasks if self.scope.covers(t) and t.app_id})
            )
        return SourceSpec(SCHEDULER_SOURCE, leader.reader_url, (), unit=MARATHON_UNIT, names=names)

    async def _whole_scope(self) -> bool:
        checks = self.scope.whole_scope_checks()
        return (await authorize_any(self._authorizer, self.uid, checks)).allowed


def capped(plan: MergePlan, limit: int, *, keep: Collection[str] = ()) -> MergePlan:
    """At most `limit` agents: those in `keep` (already streaming) first, then by id; the
    rest named in the plan's note."""
    if len(plan.sources) <= limit:
        return plan
    order = sorted(plan.sources, key=lambda agent: (agent not in keep, agent))
    chosen, left_out = order[:limit], order[limit:]
    note = (
        f"{len(left_out)} agent(s) left out, over the limit of {limit} agents per merged "
        f"stream (merge_max_agents): {', '.join(sorted(left_out))}"
    )
    sources = MappingProxyType({agent: plan.sources[agent] for agent in sorted(chosen)})
    return MergePlan(sources, note)


__all__ = [
    "OWNED_FIELDS",
    "MergeScope",
    "Narrowing",
    "Planner",
    "capped",
    "denied",
    "split_filters",
]
