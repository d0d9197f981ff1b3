"""The simulated cluster as plain values, and their rendering in Mesos's JSON shapes
(reference §8, with the DC/OS 1.10 fixture as the model of every field)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

MESOS_VERSION = "1.5.0"
AGENT_CAPABILITIES = ["MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT"]
FRAMEWORK_CAPABILITIES = ["PARTITION_AWARE"]
AGENT_RESOURCES = {"disk": 100_000.0, "mem": 15_000.0, "gpus": 0.0, "cpus": 4.0}
TASK_RESOURCES = {"disk": 0.0, "mem": 128.0, "gpus": 0.0, "cpus": 0.1}
NO_RESOURCES = {"disk": 0.0, "mem": 0.0, "gpus": 0.0, "cpus": 0.0}
SCHEDULER_PORT = 15101  # libprocess's port of the fixture's Marathon
TASK_STATES = (
    "TASK_STAGING",
    "TASK_STARTING",
    "TASK_RUNNING",
    "TASK_KILLING",
    "TASK_FINISHED",
    "TASK_KILLED",
    "TASK_FAILED",
    "TASK_LOST",
    "TASK_ERROR",
    "TASK_UNREACHABLE",
)


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class SimAgent:
    id: str
    ip: str
    port: int = 5051
    hostname: str = ""  # defaults to the ip, as on DC/OS
    active: bool = True
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SimFramework:
    """`scheduler_host`: where the scheduler registered from (its `pid` host and `hostname`);
    `active` false: registered but disconnected (failing over, or gone without a goodbye)."""

    id: str
    name: str
    role: str = "*"
    completed: bool = False
    webui_url: str = ""
    scheduler_host: str = "127.0.0.1"
    scheduler_port: int = SCHEDULER_PORT
    active: bool = True


@dataclass(frozen=True)
class SimTask:
    """`containers`: the nested container ids, outermost first (one for a plain task, the
    executor's then the task's own for a pod task); a fresh id when empty."""

    id: str
    name: str
    framework_id: str
    agent_id: str
    executor_id: str = ""
    state: str = "TASK_RUNNING"
    containers: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    role: str = ""  # defaults to the framework's
    completed: bool = False
    started: float = field(default_factory=time.time)


@dataclass
class SimCluster:
    master_id: str = field(default_factory=new_id)
    name: str = "logway-dev"
    agents: list[SimAgent] = field(default_factory=list)
    frameworks: list[SimFramework] = field(default_factory=list)
    tasks: list[SimTask] = field(default_factory=list)

    @classmethod
    def sample(cls, agent_ips: tuple[str, ...] = ("127.0.0.2", "127.0.0.3")) -> SimCluster:
        """A small cluster: Marathon with an app, a pod and two tasks named alike."""
        cluster = cls()
        agents = [SimAgent(f"{cluster.master_id}-S{i}", ip) for i, ip in enumerate(agent_ips)]
        marathon = SimFramework(f"{cluster.master_id}-0000", "marathon", role="slave_public")
        metronome = SimFramework(f"{cluster.master_id}-0001", "metronome")
        pod = f"dev_pod.instance-{new_id()}"
        executor = f"instance-dev_pod.{pod.rsplit('instance-', 1)[1]}"
        pod_container = new_id()
        first = agents[0].id
        cluster.agents = agents
        cluster.frameworks = [marathon, metronome]
        cluster.tasks = [
            SimTask(f"sleeper.{new_id()}", "sleeper", marathon.id, first),
            SimTask(
                f"{pod}.web",
                "web",
                marathon.id,
                first,
                executor,
                containers=(pod_container, new_id()),
            ),
            SimTask(
                f"{pod}.sidecar",
                "sidecar",
                marathon.id,
                first,
                executor,
                containers=(pod_container, new_id()),
            ),
            SimTask("twin-1", "twin", marathon.id, agents[-1].id),
            SimTask("twin-2", "twin", marathon.id, agents[-1].id),
            SimTask(
                f"nightly_{new_id()}",
                "nightly",
                metronome.id,
                agents[-1].id,
                state="TASK_FINISHED",
                completed=True,
            ),
        ]
        return cluster


def render_agent(agent: SimAgent, registered: float) -> dict[str, Any]:
    return {
        "id": agent.id,
        "hostname": agent.hostname or agent.ip,
        "port": agent.port,
        "attributes": dict(agent.attributes),
        "pid": f"slave(1)@{agent.ip}:{agent.port}",
        "registered_time": registered,
        "resources": dict(AGENT_RESOURCES),
        "used_resources": dict(NO_RESOURCES),
        "offered_resources": dict(NO_RESOURCES),
        "reserved_resources": {},
        "unreserved_resources": dict(AGENT_RESOURCES),
        "active": agent.active,
        "version": MESOS_VERSION,
        "capabilities": list(AGENT_CAPABILITIES),
    }


def render_framework(framework: SimFramework, registered: float) -> dict[str, Any]:
    return {
        "id": framework.id,
        "name": framework.name,
        "pid": scheduler_pid(framework),
        "used_resources": dict(NO_RESOURCES),
        "offered_resources": dict(NO_RESOURCES),
        "capabilities": list(FRAMEWORK_CAPABILITIES),
        "hostname": framework.scheduler_host,
        "webui_url": framework.webui_url,
        "active": framework.active and not framework.completed,
        "connected": framework.active and not framework.completed,
        "recovered": False,
        "user": "root",
        "failover_timeout": 604800.0,
        "checkpoint": True,
        "registered_time": registered,
        "unregistered_time": registered if framework.completed else 0.0,
        "resources": dict(NO_RESOURCES),
        "role": framework.role,
        "tasks": [],
        "unreachable_tasks": [],
        "completed_tasks": [],
        "offers": [],
        "executors": [],
    }


def scheduler_pid(framework: SimFramework) -> str:
    """libprocess's `scheduler-<uuid>@<ip>:<port>` (the uuid here is the framework's id)."""
    host = (
        f"[{framework.scheduler_host}]"
        if ":" in framework.scheduler_host
        else framework.scheduler_host
    )
    return f"scheduler-{framework.id}@{host}:{framework.scheduler_port}"


def render_task(task: SimTask, *, agent_ip: str, role: str) -> dict[str, Any]:
    containers = task.containers or (new_id(),)
    container_id: dict[str, Any] = {}
    for value in containers:  # outermost first: each one wraps the previous as its parent
        container_id = (
            {"value": value, "parent": container_id} if container_id else {"value": value}
        )
    status = {
        "state": task.state,
        "timestamp": task.started,
        "container_status": {
            "container_id": container_id,
            "network_infos": [{"ip_addresses": [{"protocol": "IPv4", "ip_address": agent_ip}]}],
        },
    }
    rendered: dict[str, Any] = {
        "id": task.id,
        "name": task.name,
        "framework_id": task.framework_id,
        "executor_id": task.executor_id,
        "slave_id": task.agent_id,
        "state": task.state,
        "resources": dict(TASK_RESOURCES),
        "role": task.role or role,
        "statuses": [status],
    }
    if task.labels:
        rendered["labels"] = [{"key": k, "value": v} for k, v in task.labels.items()]
    return rendered


@dataclass(frozen=True)
class SimMaster:
    host: str
    port: int
    id: str = field(default_factory=new_id)

    @property
    def pid(self) -> str:
        return f"master@{self.host}:{self.port}"
