"""A real `logway gateway` process with the cluster options, and node readers on one port;
for the fault tests, a whole small cluster whose parts can fail one by one."""

from __future__ import annotations

import contextlib
import itertools
import re
import socket
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx

from app.core.audience import url_audience
from app.devcluster.commands import node_argv
from app.devcluster.journald import JournaldNamespace
from app.devcluster.mesos import MesosSimulator, SimAgent, SimCluster
from app.iam.key_ring import KeyRing
from app.iam.tokens import TokenIssuer
from tests.conftest import free_port, new_namespace_name
from tests.support.gateway import gateway as support_gateway
from tests.support.journal import Sender
from tests.support.servers import stop, wait_http

GATEWAY_UID = "logway-gateway"
T = TypeVar("T")


def signed_headers(
    gateway_data_dir: Path, uid: str, *, audience: str | None = None
) -> dict[str, str]:
    """A token for `uid` signed with the keys of the gateway whose state is in
    `gateway_data_dir`, as its IAM would issue it (whether or not `uid` exists there)."""
    ring = KeyRing(gateway_data_dir / "keys", token_lifetime=3600)
    ring.load()
    issued = TokenIssuer(ring, lifetime=300).issue(uid, audience=audience)
    return {"Authorization": f"token={issued.token}"}


def node_headers(gateway_data_dir: Path, reader_url: str) -> dict[str, str]:
    """The credential that gateway mints for the reader at `reader_url` (addressed to it
    alone), to read that reader directly."""
    return signed_headers(gateway_data_dir, GATEWAY_UID, audience=url_audience(reader_url))


@contextlib.contextmanager
def gateway(
    data_dir: Path, *, password: str, mesos: str, reader_port: int, host: str = "127.0.0.4"
) -> Iterator[str]:
    """The shared test gateway, pointed at a Mesos master and a node reader port."""
    with support_gateway(
        data_dir, f"--mesos={mesos}", f"--reader-port={reader_port}", password=password, host=host
    ) as base:
        yield base


def port_free_on(hosts: tuple[str, ...]) -> int:
    """A port that is free on every one of `hosts` (all node readers listen on one port)."""
    for _ in range(50):
        port = free_port(hosts[0])
        try:
            for host in hosts[1:]:
                with socket.socket() as s:
                    s.bind((host, port))
        except OSError:
            continue
        return port
    raise RuntimeError(f"no common free port on {hosts}")


class Reader:
    """`logway node` on host:port over a journald namespace, trusting only the gateway's uid;
    it can be killed and started again on the same address."""

    def __init__(
        self, namespace: str, host: str, port: int, jwks_url: str, log: Path | None = None
    ) -> None:
        self.url = f"http://{host}:{port}"
        self._argv = node_argv(
            namespace, host, port, f"--jwks-url={jwks_url}", f"--allow-uid={GATEWAY_UID}"
        )
        self._log = log  # appended to across restarts; None: a pipe, read if it fails to start
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Reader:
        if self.proc is None:
            with contextlib.ExitStack() as files:
                out = files.enter_context(self._log.open("ab")) if self._log else subprocess.PIPE
                self.proc = subprocess.Popen(self._argv, stdout=out, stderr=subprocess.STDOUT)
            wait_http(f"{self.url}/v1/fields/STREAM", self.proc)
        return self

    def kill(self) -> None:
        """SIGKILL: no goodbye to anyone it streams to."""
        assert self.proc is not None
        self.proc.kill()
        self._reap()

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self._reap()

    def _reap(self) -> None:
        assert self.proc is not None
        self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None


@contextlib.contextmanager
def node_readers(namespaces: dict[str, str], port: int, jwks_url: str) -> Iterator[dict[str, str]]:
    """`logway node` on each host:port over its namespace, trusting only the gateway's uid."""
    with contextlib.ExitStack() as stack:
        urls: dict[str, str] = {}
        for host, namespace in namespaces.items():
            reader = Reader(namespace, host, port, jwks_url)
            stack.callback(reader.stop)
            urls[host] = reader.start().url
        yield urls


# --- Fault tests: a small cluster whose parts fail one by one ------------------------------


def listener_pid(base: str) -> int:
    """The pid of the process listening at `base` (http://host:port), from `ss`."""
    host, port = base.removeprefix("http://").rsplit(":", 1)
    out = subprocess.run(
        ["ss", "-Hltnp", f"src {host}:{port}"], capture_output=True, text=True, check=True
    ).stdout
    found = re.search(r"pid=(\d+)", out)
    assert found, out
    return int(found.group(1))


def metric(base: str, name: str, headers: Mapping[str, str]) -> int:
    """A gauge or counter without labels from the Prometheus text at `base`/metrics."""
    text = httpx.get(f"{base}/metrics", headers=dict(headers), timeout=5).text
    found = re.search(rf"^{name} (\d+)$", text, re.M)
    assert found, text
    return int(found.group(1))


def login(base: str, uid: str, password: str) -> dict[str, str]:
    r = httpx.post(f"{base}/acs/api/v1/auth/login", json={"uid": uid, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"token={r.json()['token']}"}


def add_user(base: str, admin: Mapping[str, str], uid: str, password: str) -> dict[str, str]:
    r = httpx.put(
        f"{base}/acs/api/v1/users/{uid}", json={"password": password}, headers=dict(admin)
    )
    assert r.status_code == 201, r.text
    return login(base, uid, password)


def grant(base: str, admin: Mapping[str, str], rid: str, uid: str) -> None:
    """Give `uid` `read` on `rid`, creating the ACL if needed."""
    acl = f"{base}/acs/api/v1/acls/{rid}"
    assert httpx.put(acl, json={}, headers=dict(admin)).status_code in (201, 409)
    assert httpx.put(f"{acl}/users/{uid}/read", headers=dict(admin)).status_code == 204


FAULT_PASSWORD = "admin password for fault tests"
FAULT_HOSTS = ("127.0.0.2", "127.0.0.3")  # masters 0 and 1, agents S0 and S1, their readers
FAULT_MASTER_ID = "5d1e6c2a-0000-4000-8000-00000000fa17"
FAULT_AGENTS = (f"{FAULT_MASTER_ID}-S0", f"{FAULT_MASTER_ID}-S1")  # on FAULT_HOSTS
# Each reader's journal holds one entry with this field naming its host, so that a range
# read of `MARKED` through the gateway tells which reader answered.
NODE_MARK = "LOGWAY_TEST_NODE"
MARKED = f"/v1/range/?filter={NODE_MARK}:1"
# Refuses connections: for a gateway that only serves the IAM (and the readers' JWKS).
DEAD_MESOS = "http://127.0.0.1:9"
LOG_TAIL = 4000


@dataclass
class FaultCluster:
    """Two simulated masters and two agents on `FAULT_HOSTS`, a node reader on each host
    over its own journald namespace, and an IAM gateway (Mesos unreachable) whose JWKS the
    readers trust. Gateways under test share its data directory, hence its signing key."""

    tmp: Path
    sim: MesosSimulator
    readers: dict[str, Reader]  # by host
    senders: dict[str, Sender]  # by host
    reader_port: int
    admin: dict[str, str]
    added: list[str] = field(default_factory=list)
    _serial: Iterator[int] = field(default_factory=itertools.count)

    @contextlib.contextmanager
    def gateway(
        self,
        *,
        masters: Sequence[str] | None = None,
        settings: Mapping[str, str] | None = None,
        **timings: float,
    ) -> Iterator[str]:
        """A gateway under test over `masters` (default: all), with the Mesos state cache's
        timings (`poll_period=0.25`, `hard_limit=5`, …) in its `LOGWAY_GATEWAY_MESOS_*`
        variables and any other `settings` (`LOGWAY_…` variables); its log is printed when
        the body fails."""
        log = self.tmp / f"gateway-{next(self._serial)}.log"
        env = {f"LOGWAY_GATEWAY_MESOS_{name.upper()}": str(v) for name, v in timings.items()}
        env.update(settings or {})
        options = [f"--mesos={url}" for url in (self.sim.urls if masters is None else masters)]
        try:
            with support_gateway(
                self.tmp / "gateway",
                *options,
                f"--reader-port={self.reader_port}",
                password=FAULT_PASSWORD,
                extra_env=env,
                log_path=log,
            ) as base:
                yield base
        except BaseException:
            print(f"--- {log.name} ---\n{log.read_text(errors='replace')[-LOG_TAIL:]}")
            raise

    def node_headers(self, reader: Reader) -> dict[str, str]:
        """The gateway's credential for `reader`, to read its /metrics directly."""
        return node_headers(self.tmp / "gateway", reader.url)

    def add_agent(self, agent: SimAgent) -> None:
        self.added.append(agent.id)
        self.sim.add_agent(agent)

    def restore(self) -> None:
        """Undo what a test did: faults, failovers, stopped masters and readers, agents."""
        self.sim.heal()
        for index in range(len(self.sim.urls)):
            self.sim.start_master(index)
        self.sim.fail_over(0)
        while self.added:
            self.sim.remove_agent(self.added.pop())
        for reader in self.readers.values():
            reader.start()
        self.sim.reset_requests()


@contextlib.contextmanager
def fault_cluster(tmp: Path) -> Iterator[FaultCluster]:
    port = port_free_on(FAULT_HOSTS)
    sim_cluster = SimCluster(master_id=FAULT_MASTER_ID)
    sim_cluster.agents = [SimAgent(a, h) for a, h in zip(FAULT_AGENTS, FAULT_HOSTS, strict=True)]
    with contextlib.ExitStack() as stack:
        namespaces = [
            stack.enter_context(JournaldNamespace(new_namespace_name())) for _ in FAULT_HOSTS
        ]
        masters = [(host, 0) for host in FAULT_HOSTS]
        sim = stack.enter_context(MesosSimulator(sim_cluster, masters=masters))
        iam = stack.enter_context(
            support_gateway(
                tmp / "gateway",
                f"--mesos={DEAD_MESOS}",
                password=FAULT_PASSWORD,
                log_path=tmp / "gateway-iam.log",
            )
        )
        jwks = f"{iam}/acs/api/v1/auth/jwks"
        readers: dict[str, Reader] = {}
        senders: dict[str, Sender] = {}
        for host, ns in zip(FAULT_HOSTS, namespaces, strict=True):
            readers[host] = Reader(ns.name, host, port, jwks, tmp / f"reader-{host}.log")
            stack.callback(readers[host].stop)
            readers[host].start()
            senders[host] = sender = Sender(ns)
            stack.callback(sender.close)
            sender.send({"MESSAGE": f"reader on {host}", NODE_MARK: "1"})
            sender.sync()
        admin = login(iam, "admin", FAULT_PASSWORD)
        add_user(iam, admin, GATEWAY_UID, "gateway test password")
        yield FaultCluster(tmp, sim, readers, senders, port, admin)


def answered_by(response: httpx.Response) -> str:
    """The host of the reader that answered a range read of `MARKED`."""
    assert response.status_code == 200, (response.status_code, response.text)
    found = re.search(r"reader on (127\.0\.0\.\d+)", response.text)
    assert found, response.text
    return found.group(1)
