"""A small cluster for the forwarder's end-to-end tests, every part real: a journald namespace
and a `logway node` per node (the master on .102, which is also where the Mesos simulator
leads from; agents S0 on .100 and S1 on .101), `logway gateway` on .103, and the receivers
(redis-server, rsyslogd, systemd-journal-remote, an OTLP/HTTP server) on .104-.107.

    S0 (.100)  /prod/web    role prod      /dev/worker  role dev
    S1 (.101)  /devops/api  role dev

Tests tag their lines `TEST_RUN=<id>` and forward with `--filter TEST_RUN:<id>`, so they
never see each other's lines.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.devcluster.commands import logway_argv
from app.devcluster.journald import JournaldNamespace
from app.devcluster.mesos import MesosSimulator, SimCluster
from tests.conftest import new_namespace_name
from tests.gateway.support import GATEWAY_UID, Reader, add_user, grant, login, port_free_on
from tests.support.gateway import gateway as support_gateway
from tests.support.journal import Sender
from tests.support.tasks import RUN as RUN  # the tag forward tests filter on
from tests.support.tasks import NumberedLines, TaskDef
from tests.support.tasks import sim_cluster as tasks_cluster
from tests.support.wait import wait_for as support_wait_for

PASSWORD = "admin password for forward tests"
MASTER_HOST = "127.0.0.102"
AGENT_HOSTS = ("127.0.0.100", "127.0.0.101")
GATEWAY_HOST = "127.0.0.103"
REDIS_HOST, SYSLOG_HOST, JOURNAL_HOST, OTLP_HOST = (
    "127.0.0.104",
    "127.0.0.105",
    "127.0.0.106",
    "127.0.0.107",
)
MASTER_ID = "6a1e5c0d-0000-4000-8000-00000f0f0100"
AGENTS = tuple(f"{MASTER_ID}-S{i}" for i in range(len(AGENT_HOSTS)))
MARATHON = f"{MASTER_ID}-0000"
DEADLINE = 60.0
LOG_TAIL = 4000

GATEWAY_ENV = {
    "LOGWAY_GATEWAY_MESOS_POLL_PERIOD": "0.3",
    "LOGWAY_GATEWAY_MESOS_REFRESH_MIN_INTERVAL": "0.2",
    "LOGWAY_GATEWAY_MERGE_MEMBERSHIP_PERIOD": "0.2",
}


WEB = TaskDef("/prod/web", "prod", AGENTS[0], "web-0", MARATHON)
DEV = TaskDef("/dev/worker", "dev", AGENTS[0], "dev-0", MARATHON)
DEVOPS = TaskDef("/devops/api", "dev", AGENTS[1], "devops-1", MARATHON)
TASKS = (WEB, DEV, DEVOPS)


def sim_cluster() -> SimCluster:
    agents = dict(zip(AGENTS, AGENT_HOSTS, strict=True))
    return tasks_cluster(MASTER_ID, agents, TASKS, framework_id=MARATHON, role="prod")


@dataclass
class Env:
    tmp: Path
    base: str
    senders: dict[str, Sender]  # by agent id, and "master"
    admin: dict[str, str]
    _lines: NumberedLines = field(init=False)

    def __post_init__(self) -> None:
        self._lines = NumberedLines(self.senders)

    @property
    def admin_token(self) -> str:
        return self.admin["Authorization"].removeprefix("token=")

    def write(self, task: TaskDef, run: str, count: int) -> None:
        self._lines.write(task, run, count, TASK_ID=task.task_id, SYSLOG_IDENTIFIER=task.name)

    def sync(self) -> None:
        for sender in self.senders.values():
            sender.sync()

    def service_account(self, uid: str, *grants: str) -> Path:
        """A service account with a fresh key (its PEM file returned), granted `read` on
        each of `grants`."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        r = httpx.put(
            f"{self.base}/acs/api/v1/users/{uid}",
            json={"description": "forwarder", "public_key": public.decode()},
            headers=self.admin,
        )
        assert r.status_code == 201, r.text
        for rid in grants:
            grant(self.base, self.admin, rid, uid)
        path = self.tmp / f"{uid}.pem"
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return path

    def revoke(self, rid: str, uid: str) -> None:
        r = httpx.delete(f"{self.base}/acs/api/v1/acls/{rid}/users/{uid}/read", headers=self.admin)
        assert r.status_code == 204, r.text

    def forward(self, *args: str, token: str | None = None, log: Path | None = None) -> Forwarder:
        """`logway forward ARGS --url <gateway>`, as the admin unless `token`/a service
        account is given."""
        env = {**os.environ, "LOGWAY_TOKEN": self.admin_token if token is None else token}
        if "--service-account" in args:
            env.pop("LOGWAY_TOKEN")
        env["XDG_CONFIG_HOME"] = str(self.tmp / "no-login")
        log = log or self.tmp / f"forward-{uuid.uuid4().hex[:8]}.log"
        argv = logway_argv("forward", *args, f"--url={self.base}")
        return Forwarder(argv, env, log)


class Forwarder:
    """A `logway forward` process, its output in a file."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], log: Path) -> None:
        self.log = log
        with log.open("ab") as out:
            self.proc = subprocess.Popen(list(argv), stdout=out, stderr=out, env=dict(env))

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def terminate(self, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def wait(self, timeout: float = DEADLINE) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            output = self.output()[-LOG_TAIL:]
            raise AssertionError(f"the forwarder did not end:\n{output}") from None

    def __enter__(self) -> Forwarder:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.kill()
        if any(exc):
            print(f"--- {self.log.name} ---\n{self.output()[-LOG_TAIL:]}", file=sys.stderr)


@contextlib.contextmanager
def forward_env(
    tmp: Path,
    *,
    cluster: SimCluster | None = None,
    nodes: Mapping[str, str] | None = None,
    masters: Sequence[str] = (MASTER_HOST,),
    ready: tuple[str, Callable[[Env], object]] | None = None,
    gateway_host: str = GATEWAY_HOST,
) -> Iterator[Env]:
    """The simulator (`cluster`, answering on every one of `masters`), a journal and node
    reader per node (`nodes`: sender key -> host) and a gateway polling every master, ready
    when `ready`'s check passes. By default: one master, the two agents, `sim_cluster()`."""
    if nodes is None:
        nodes = dict(zip(("master", *AGENTS), (MASTER_HOST, *AGENT_HOSTS), strict=True))
    what, check = ready or ("the gateway's first cluster state", _ready)
    hosts = tuple(nodes.values())
    port = port_free_on(hosts)
    with contextlib.ExitStack() as stack:
        namespaces = [stack.enter_context(JournaldNamespace(new_namespace_name())) for _ in hosts]
        sim = stack.enter_context(
            MesosSimulator(cluster or sim_cluster(), masters=[(ip, 0) for ip in masters])
        )
        log = tmp / "gateway.log"
        try:
            base = stack.enter_context(
                support_gateway(
                    tmp / "gateway",
                    *(f"--mesos={url}" for url in sim.urls),
                    f"--reader-port={port}",
                    password=PASSWORD,
                    host=gateway_host,
                    extra_env=GATEWAY_ENV,
                    log_path=log,
                )
            )
        except BaseException:
            print(f"--- gateway.log ---\n{log.read_text(errors='replace')[-LOG_TAIL:]}")
            raise
        env = Env(tmp, base, {}, {})
        jwks = f"{base}/acs/api/v1/auth/jwks"
        for (key, host), ns in zip(nodes.items(), namespaces, strict=True):
            reader = Reader(ns.name, host, port, jwks, tmp / f"reader-{host}.log")
            stack.callback(reader.stop)
            reader.start()
            env.senders[key] = sender = Sender(ns)
            stack.callback(sender.close)
        env.admin = login(base, "admin", PASSWORD)
        add_user(base, env.admin, GATEWAY_UID, "gateway test password")
        wait_for(what, lambda: check(env))
        yield env


def _ready(env: Env) -> bool | None:
    r = httpx.get(
        f"{env.base}/system/v1/logs/v1/app/prod/web/range/",
        headers=env.admin,
        params={"limit": 1},
    )
    return r.status_code in (200, 204) or None


def new_run() -> str:
    return uuid.uuid4().hex


def wait_for(what: str, check: object, *, timeout: float = DEADLINE) -> object:
    """`tests.support.wait.wait_for`, with this package's longer deadline."""
    return support_wait_for(what, check, timeout=timeout)  # type: ignore[arg-type]
