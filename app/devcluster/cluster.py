"""What `logway dev` runs: one master and its agents, each at its own loopback address with its
own journald namespace and node reader, a Marathon framework (leading from the master, whose
`dcos-marathon.service` writes about the apps) with sample apps and a pod, a system service
writing on every node, and the identities an operator would make. Plain values;
`app.devcluster.supervisor` runs them.

The Mesos ids are the simulator's (fresh per run), and each sample task ships its output with
exactly those ids, so the gateway's task routes find the lines the simulator's state names.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

from app.devcluster.mesos import SimAgent, SimCluster, SimFramework, SimTask
from app.devcluster.mesos.model import new_id

GATEWAY_UID = "logway-gateway"  # GatewaySettings.service_uid: the uid node readers allow
SUPERUSER = "admin"  # IamSettings' default superuser uid
DEV_USER = "dev"  # a user who may read the /dev/* tasks' logs only
OPS_ACCOUNT = "logway-ops"  # a service account reading every log, with its key on disk
MARATHON = "marathon"
SAMPLE_TASK = "app.devcluster.sample_task"  # run with `python -m`
PROD_WEB = "/prod/web"  # one instance on every agent, role "prod"
DEV_WORKER = "/dev/worker"  # one instance, role "dev"
DEV_BATCH = "/dev/batch"  # a pod: POD_CONTAINERS in nested containers of one executor
PROD_ROLE, DEV_ROLE = "prod", "dev"
POD_CONTAINERS = ("loader", "reporter")
MAX_AGENTS = 50
MAX_REPLICAS = 8
MAX_GATEWAY_WORKERS = 64  # GatewaySettings.workers' bound
DEFAULT_AGENTS = 2


def consecutive_ips(master_ip: str, count: int) -> tuple[str, ...]:
    """`count` agent addresses right after the master's (127.0.0.1 → 127.0.0.2, .3, …)."""
    if not 1 <= count <= MAX_AGENTS:
        raise ValueError(f"the number of agents must be 1 to {MAX_AGENTS}, not {count}")
    try:
        master = ipaddress.IPv4Address(master_ip)
    except ValueError:
        raise ValueError(
            f"the master's address must be an IPv4 address, not {master_ip!r}"
        ) from None
    last = master + count
    if last.packed[:3] != master.packed[:3] or last.packed[3] == 255:
        raise ValueError(
            f"{count} agents after {master_ip} run past {master_ip.rsplit('.', 1)[0]}.254: "
            "choose another --master-ip or give --agent-ip"
        )
    return tuple(str(master + i) for i in range(1, count + 1))


@dataclass(frozen=True, kw_only=True)
class DevClusterConfig:
    """Addresses and places; the defaults are what `make run` uses."""

    master_ip: str = "127.0.0.1"
    agent_ips: tuple[str, ...] = consecutive_ips("127.0.0.1", DEFAULT_AGENTS)
    mesos_port: int = 5050
    reader_port: int = 61001  # every node reader's, as on DC/OS (Admin Router's agent port)
    gateway_port: int = 8000
    namespace: str = "logway-dev"  # prefix of the per-node journald namespaces
    data_dir: Path = Path(".logway/dev")
    # More than 1: PostgreSQL, that many gateway replicas on it (ports after the gateway's),
    # nginx in front on the gateway's address.
    replicas: int = 1
    # Worker processes of each gateway (`logway gateway --workers`, app/core/workers.py).
    gateway_workers: int = 1
    postgres_port: int = 15432

    def __post_init__(self) -> None:
        if not self.agent_ips:
            raise ValueError("the dev cluster needs at least one agent")
        if not 1 <= self.replicas <= MAX_REPLICAS:
            raise ValueError(f"--replicas must be between 1 and {MAX_REPLICAS}")
        if not 1 <= self.gateway_workers <= MAX_GATEWAY_WORKERS:
            raise ValueError(f"--gateway-workers must be between 1 and {MAX_GATEWAY_WORKERS}")
        if len(self.agent_ips) > MAX_AGENTS:
            raise ValueError(f"the dev cluster runs at most {MAX_AGENTS} agents")
        ips = (self.master_ip, *self.agent_ips)
        if len(set(ips)) != len(ips):
            raise ValueError("the master and every agent need their own address")


@dataclass(frozen=True, kw_only=True)
class SystemService:
    """A systemd-unit-like writer: `UNIT` is what `/v2/component/<unit>` matches."""

    unit: str
    identifier: str
    message: str  # formatted with {i}, a counter

    def line(self, i: int) -> str:
        return self.message.format(i=i)


@dataclass(frozen=True, kw_only=True)
class SchedulerService:
    """Marathon's unit on the node it leads from: every round a health check of an app and
    one line of `rotation` (deployments, offers, more health checks; one names no app), each
    formatted with {i}, a counter, as `dcos-marathon.service` would write them."""

    unit: str
    identifier: str
    every_round: str
    rotation: tuple[str, ...]

    def lines(self, i: int) -> tuple[str, str]:
        return self.every_round.format(i=i), self.rotation[i % len(self.rotation)].format(i=i)


@dataclass(frozen=True, kw_only=True)
class Node:
    name: str  # "master", "S0", "S1", …
    ip: str
    namespace: str
    reader_port: int
    service: SystemService
    agent_id: str | None = None  # None for the master
    scheduler: SchedulerService | None = None  # the Marathon leader's unit, on the master

    @property
    def reader_url(self) -> str:
        return f"http://{self.ip}:{self.reader_port}"


@dataclass(frozen=True, kw_only=True)
class SampleTask:
    """A simulated Mesos task and what runs as it under `logway ship` on its agent."""

    task: SimTask
    app_id: str  # what the gateway's index derives from the Marathon task id
    agent: Node
    argv: tuple[str, ...]  # what runs as the task

    @property
    def role(self) -> str:
        return self.task.role

    @property
    def executor_id(self) -> str:
        """Mesos's, or the task id for a command-executor task (what journald gets)."""
        return self.task.executor_id or self.task.id

    @property
    def container_id(self) -> str:
        """The container chain joined with "." (outermost first), as dcos-log v1 names it."""
        return ".".join(self.task.containers)

    @property
    def framework_id(self) -> str:
        return self.task.framework_id

    @property
    def agent_id(self) -> str:
        return self.task.agent_id

    @property
    def v1_path(self) -> str:
        """The task's v1 route after `/v1/range/` or `/v1/stream/`."""
        return (
            f"framework/{self.framework_id}/executor/{self.executor_id}"
            f"/container/{self.container_id}"
        )


@dataclass(frozen=True, kw_only=True)
class DevCluster:
    config: DevClusterConfig
    sim: SimCluster
    master: Node
    agents: tuple[Node, ...]
    tasks: tuple[SampleTask, ...]

    @property
    def nodes(self) -> tuple[Node, ...]:
        return (self.master, *self.agents)

    @property
    def mesos_url(self) -> str:
        return f"http://{self.config.master_ip}:{self.config.mesos_port}"

    @property
    def gateway_url(self) -> str:
        return f"http://{self.config.master_ip}:{self.config.gateway_port}"

    @property
    def replica_ports(self) -> tuple[int, ...]:
        """The gateway replicas' ports behind nginx (none with one gateway)."""
        if self.config.replicas == 1:
            return ()
        return tuple(self.config.gateway_port + 1 + i for i in range(self.config.replicas))

    @property
    def replica_urls(self) -> tuple[str, ...]:
        return tuple(f"http://{self.config.master_ip}:{p}" for p in self.replica_ports)

    @property
    def jwks_url(self) -> str:
        return f"{self.gateway_url}/acs/api/v1/auth/jwks"

    def tasks_of(self, app_id: str) -> tuple[SampleTask, ...]:
        """The app's instances (one per agent for PROD_WEB), or the pod's tasks, in order."""
        found = tuple(task for task in self.tasks if task.app_id == app_id)
        if not found:
            raise KeyError(app_id)
        return found

    def task_for(self, app_id: str) -> SampleTask:
        """The app's first instance, or the pod's first task."""
        return self.tasks_of(app_id)[0]


MASTER_SERVICE = SystemService(
    unit="dcos-mesos-master.service",
    identifier="mesos-master",
    message="mesos-master: allocation cycle {i} done",
)
AGENT_SERVICE = SystemService(
    unit="dcos-mesos-slave.service",
    identifier="mesos-agent",
    message="mesos-agent: status update round {i} sent",
)


MARATHON_SERVICE = SchedulerService(
    unit="dcos-marathon.service",
    identifier="marathon",
    every_round=f"marathon: health check of {PROD_WEB} instance {{i}} passed (HTTP 200)",
    rotation=(
        f"marathon: deployment {{i}} of {PROD_WEB}: step 1/1 ScaleApplication finished",
        f"marathon: offer O{{i}} accepted for {DEV_WORKER}: launching 1 instance",
        f"marathon: health check of {DEV_BATCH} pod instance {{i}} passed",
        "marathon: offer O{i} declined: no run spec is waiting for resources",
        f"marathon: deployment {{i}} of {DEV_BATCH}: RestartApplication step 1/1 finished",
    ),
)
MARATHON_WEBUI_PORT = 8080


def build(config: DevClusterConfig, *, python: str) -> DevCluster:
    """The dev cluster for `config`, with fresh Mesos ids; `python` runs the sample tasks."""
    sim = SimCluster(name=config.namespace)
    master = Node(
        name="master",
        ip=config.master_ip,
        namespace=f"{config.namespace}-master",
        reader_port=config.reader_port,
        service=MASTER_SERVICE,
        scheduler=MARATHON_SERVICE,
    )
    agents = tuple(
        Node(
            name=f"S{i}",
            ip=ip,
            namespace=f"{config.namespace}-s{i}",
            reader_port=config.reader_port,
            service=AGENT_SERVICE,
            agent_id=f"{sim.master_id}-S{i}",
        )
        for i, ip in enumerate(config.agent_ips)
    )
    # Marathon leads from the master: its scheduler registered from the master's address,
    # which is how the gateway finds the Marathon leader's journal (issue 18).
    marathon = SimFramework(
        f"{sim.master_id}-0000",
        MARATHON,
        webui_url=f"http://{config.master_ip}:{MARATHON_WEBUI_PORT}",
        scheduler_host=config.master_ip,
    )
    sim.agents = [SimAgent(f"{sim.master_id}-S{i}", a.ip) for i, a in enumerate(agents)]
    sim.frameworks = [marathon]

    def app_task(app_id: str, role: str, agent: Node, what: str) -> SampleTask:
        # Marathon's task ids for apps: `<group>_<app>.<uuid>`; its task names: the app id's
        # segments reversed and dotted (`PathId.toHostname`). Marathon (MULTI_ROLE) reserves
        # each task's resources for the app's role, so Mesos reports the role per task.
        segments = app_id.strip("/").split("/")
        task = SimTask(
            f"{'_'.join(segments)}.{new_id()}",
            ".".join(reversed(segments)),
            marathon.id,
            sim.agents[agents.index(agent)].id,
            containers=(new_id(),),
            role=role,
        )
        return SampleTask(
            task=task, app_id=app_id, agent=agent, argv=(python, "-m", SAMPLE_TASK, app_id, what)
        )

    def pod_tasks(pod_id: str, role: str, agent: Node, what: str) -> list[SampleTask]:
        # A Marathon pod instance: the default executor `instance-<pod>.<uuid>` in the parent
        # container, each pod container a task `<pod>.instance-<uuid>.<name>` (named after the
        # container) in a nested container of its own.
        safe = "_".join(pod_id.strip("/").split("/"))
        instance, parent = new_id(), new_id()
        tasks = []
        for container in POD_CONTAINERS:
            task = SimTask(
                f"{safe}.instance-{instance}.{container}",
                container,
                marathon.id,
                sim.agents[agents.index(agent)].id,
                executor_id=f"instance-{safe}.{instance}",
                containers=(parent, new_id()),
                role=role,
            )
            label = f"{pod_id}/{container}"
            argv = (python, "-m", SAMPLE_TASK, label, what)
            tasks.append(SampleTask(task=task, app_id=pod_id, agent=agent, argv=argv))
        return tasks

    tasks = (
        *(app_task(PROD_WEB, PROD_ROLE, agent, "page rendered") for agent in agents),
        app_task(DEV_WORKER, DEV_ROLE, agents[0], "job done"),
        *pod_tasks(DEV_BATCH, DEV_ROLE, agents[-1], "batch step"),
    )
    sim.tasks = [t.task for t in tasks]
    return DevCluster(config=config, sim=sim, master=master, agents=agents, tasks=tasks)
