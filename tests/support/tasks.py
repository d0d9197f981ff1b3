"""Marathon tasks of the test clusters (tests/merge, tests/forward, the gateway's stream access
test): their Mesos ids, their entries in the Mesos simulator, and their lines as the shipper
writes them into their agent's journal.

Tests tag their lines `TEST_RUN=<their own id>` and read with `filter=TEST_RUN:<id>`, so they
never see each other's lines.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from app.devcluster.mesos import SimAgent, SimCluster, SimFramework, SimTask
from tests.support.journal import Sender

RUN = "TEST_RUN"


@dataclass(frozen=True)
class TaskDef:
    app: str  # Marathon's app id: `/prod/web`
    role: str
    agent_id: str
    name: str  # this instance's: in its task id and its container id
    framework_id: str

    @property
    def task_id(self) -> str:
        return f"{self.app.strip('/').replace('/', '_')}.instance-{self.name}"

    @property
    def task_name(self) -> str:
        """The Mesos task's name (the app's last segment): what `logs task NAME` finds."""
        return self.app.rsplit("/", 1)[1]

    @property
    def executor(self) -> str:
        return f"{self.task_id}.exec"

    @property
    def container(self) -> str:
        return f"c-{self.name}"

    def sim(self) -> SimTask:
        return SimTask(
            self.task_id,
            self.task_name,
            self.framework_id,
            self.agent_id,
            executor_id=self.executor,
            containers=(self.container,),
            labels={"DCOS_SPACE": self.app},
            role=self.role,
        )

    def fields(self, message: str, **extra: str) -> dict[str, str]:
        """A line of the task's stdout, with the Mesos fields the shipper writes."""
        return {
            "MESSAGE": message,
            "AGENT_ID": self.agent_id,
            "FRAMEWORK_ID": self.framework_id,
            "EXECUTOR_ID": self.executor,
            "CONTAINER_ID": self.container,
            "STREAM": "STDOUT",
            **extra,
        }


@dataclass(frozen=True)
class PodTaskDef:
    """One container of a Marathon pod instance, as Mesos lists it (reference §8): a task
    `<pod>.instance-<instance>.<name>` of the default executor `instance-<pod>.<instance>`,
    in a nested container whose parent is the executor's (shared by the instance's tasks).
    No `DCOS_SPACE` label: its app id is the pod id Marathon encodes in the task id."""

    pod: str  # Marathon's pod id: `/dev/batch`
    role: str
    agent_id: str
    instance: str
    name: str  # the pod container's name: the task id's last part
    framework_id: str

    @property
    def _safe(self) -> str:
        return self.pod.strip("/").replace("/", "_")

    @property
    def task_id(self) -> str:
        return f"{self._safe}.instance-{self.instance}.{self.name}"

    @property
    def executor(self) -> str:
        return f"instance-{self._safe}.{self.instance}"

    @property
    def parent(self) -> str:
        """The executor's container: dcos-log v2's `runs/<parent>/tasks/<task id>`."""
        return f"p-{self.instance}"

    @property
    def container(self) -> str:
        """dcos-log v1's container id (and the journal's CONTAINER_ID): `parent.own`."""
        return f"{self.parent}.c-{self.instance}-{self.name}"

    def sim(self) -> SimTask:
        return SimTask(
            self.task_id,
            self.name,
            self.framework_id,
            self.agent_id,
            executor_id=self.executor,
            containers=tuple(self.container.split(".")),
            role=self.role,
        )


def sim_cluster(
    master_id: str,
    agents: Mapping[str, str],
    tasks: Iterable[TaskDef],
    *,
    framework_id: str,
    role: str,
) -> SimCluster:
    """A cluster of `agents` (id -> host) running `tasks` under one Marathon framework."""
    cluster = SimCluster(master_id=master_id)
    cluster.agents = [SimAgent(agent_id, host) for agent_id, host in agents.items()]
    cluster.frameworks = [SimFramework(framework_id, "marathon", role=role)]
    cluster.tasks = [task.sim() for task in tasks]
    return cluster


@dataclass
class NumberedLines:
    """Lines `<app> <name> line <n>` of tasks into their agents' journals, `SEQ=<n>` counting
    on per task and run; `extra` adds fixed fields to each."""

    senders: Mapping[str, Sender]  # by agent id
    _seq: dict[str, int] = field(default_factory=dict)

    def written(self, task: TaskDef, run: str) -> int:
        """How many lines of `task` tagged `run` were written."""
        return self._seq.get(f"{run}/{task.name}", 0)

    def write(self, task: TaskDef, run: str, count: int, **extra: str) -> list[int]:
        """`count` lines of `task` tagged `run`; their SEQ numbers."""
        first = self.written(task, run)
        sender = self.senders[task.agent_id]
        for n in range(first, first + count):
            message = f"{task.app} {task.name} line {n}"
            sender.send(task.fields(message, **extra, **{RUN: run, "SEQ": str(n)}))
        self._seq[f"{run}/{task.name}"] = first + count
        return list(range(first, first + count))
