"""The typed, immutable index of one Mesos `/master/state` answer.

Addresses come from Mesos's own `pid`s and the configured reader scheme and port, never from
anything a client sends: a node reader URL is only ever read out of a snapshot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Where the state document lists a task: `("frameworks", 1, "tasks", 0)`,
# `("completed_frameworks", 0, "completed_tasks", 2)` or `("orphan_tasks", 0)`.
StatePath = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Master:
    """A Mesos master: the leading one (whose state this snapshot is), or another the gateway
    is configured to poll (`ClusterSettings.masters` given by IP address)."""

    id: str
    hostname: str
    ip: str
    port: int
    reader_url: str


@dataclass(frozen=True, slots=True)
class Agent:
    id: str
    hostname: str
    ip: str  # from `pid` (`slave(1)@IP:PORT`), not from `hostname`
    port: int
    reader_url: str  # `<reader scheme>://<ip>:<reader port>`
    active: bool


@dataclass(frozen=True, slots=True)
class Framework:
    id: str
    name: str
    role: str
    completed: bool
    active: bool = False
    # Where its scheduler registered from, as the framework itself told Mesos: the host of
    # its `pid` (`scheduler-…@10.0.4.125:15101`), else its `hostname`. A claim, not an
    # address: only a node the state knows otherwise is ever read (`app.cluster.scheduler`).
    scheduler_host: str | None = None


@dataclass(frozen=True, slots=True)
class Task:
    """One Mesos task with what a log request needs (reference §8, "Mapping to log URLs").

    `executor_id` is Mesos's, or the task id when Mesos reports "" (command executor, then
    `command_executor` is true). `container_chain` holds the nested container ids from the
    outermost parent to the task's own container, as the dcos CLI joins them.
    """

    id: str
    name: str
    state: str
    agent_id: str
    framework_id: str
    executor_id: str
    command_executor: bool
    container_chain: tuple[str, ...]
    app_id: str | None
    role: str
    completed: bool

    @property
    def container_id(self) -> str:
        """The dcos-log v1 container id: the chain joined with "." ("" when unknown)."""
        return ".".join(self.container_chain)

    @property
    def run_container_id(self) -> str:
        """The dcos-log v2 `runs/<id>`: the outermost container ("" when unknown)."""
        return self.container_chain[0] if self.container_chain else ""


@dataclass(frozen=True, slots=True)
class ClusterSnapshot:
    """Build with `app.cluster.index.build_snapshot`; the mappings are read-only views."""

    master_id: str
    leader: Master
    agents: Mapping[str, Agent]
    frameworks: Mapping[str, Framework]
    # id -> task. When Mesos lists one id twice (a framework reused it after the first run
    # completed), the active task wins, then the completed one with the latest status.
    tasks: Mapping[str, Task]
    # Every task Mesos listed, active ones first, in the order of the state document.
    all_tasks: tuple[Task, ...]
    by_name: Mapping[str, tuple[Task, ...]]
    # The parsed `/master/state` document, for the routes that serve it in Mesos's shape.
    # Shared by every request for as long as the snapshot lives: never mutate it.
    state: Mapping[str, Any]
    # Every task of `all_tasks` by where `state` lists it, in the document's order. A Mesos
    # task id is no key into the document: one id can be listed twice (see `tasks`).
    task_at: Mapping[StatePath, Task]
    # The leader, then the other masters the gateway polls that are named by IP address.
    masters: tuple[Master, ...] = ()

    def agent(self, agent_id: str) -> Agent | None:
        return self.agents.get(agent_id)

    def task(self, task_id: str) -> Task | None:
        return self.tasks.get(task_id)

    def tasks_named(self, name: str) -> tuple[Task, ...]:
        return self.by_name.get(name, ())

    def find_tasks(self, query: str) -> tuple[Task, ...]:
        """dcos-log v2 task discovery, made deterministic (reference §2.4):

        1. a task whose id is exactly `query` (see `tasks` for a reused id) is the answer;
        2. otherwise the active tasks whose name equals `query` or whose id contains it;
        3. only if no active task matches, the completed tasks matched the same way
           (dcos-go searches either active or completed tasks, by a flag; we fall back).

        One result is a match, several are ambiguous, none is unknown.
        """
        exact = self.tasks.get(query)
        if exact is not None:
            return (exact,)
        found: dict[str, Task] = {}
        for completed in (False, True):
            for task in self.all_tasks:
                if task.completed is completed and (task.name == query or query in task.id):
                    # A reused id is listed once: the latest run among those that matched.
                    best = self.tasks[task.id]
                    found.setdefault(task.id, best if best.completed is completed else task)
            if found:
                break
        return tuple(found.values())
