"""Runs a `DevCluster`, each part after what it needs, and stops everything it started in
reverse order: journald namespaces → Mesos simulator → gateway (IAM, JWKS) → the identities →
node readers (they fetch the gateway's JWKS: started once it answers, because a reader that
found no keys waits out a refresh cooldown before trying again) → sample tasks under
`logway ship` and the system services → ready once every node and task answers through the
gateway.

Children run in their own process groups, so a terminal's Ctrl-C reaches only `logway dev`,
which then stops them in order. Every wait also watches `interrupt` (set by a signal handler):
a Ctrl-C during start-up stops at the next check instead of leaving half a cluster behind.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Self

import httpx

from app.devcluster import accounts
from app.devcluster.accounts import Identities
from app.devcluster.cluster import GATEWAY_UID, DevCluster
from app.devcluster.commands import gateway_argv, node_argv, ship_argv
from app.devcluster.journald import JournaldError, JournaldNamespace
from app.devcluster.lifecycle import Started
from app.devcluster.mesos import MesosSimulator
from app.devcluster.nginx import nginx_argv, write_conf
from app.devcluster.postgres import PostgresCluster, PostgresError
from app.devcluster.services import ServiceWriter

START_TIMEOUT = 60.0  # generous: the machine may be busy
STOP_TIMEOUT = 10.0
POLL_INTERVAL = 0.1
HTTP_TIMEOUT = 5.0


class DevClusterError(RuntimeError):
    pass


class Interrupted(DevClusterError):
    def __init__(self) -> None:
        super().__init__("interrupted during start-up")


@dataclass
class _Child:
    name: str
    proc: subprocess.Popen[bytes]


@dataclass
class _Started:
    namespaces: list[JournaldNamespace] = field(default_factory=list)
    simulator: MesosSimulator | None = None
    gateway: _Child | None = None
    postgres: PostgresCluster | None = None
    replicas: list[_Child] = field(default_factory=list)
    nginx: _Child | None = None
    readers: list[_Child] = field(default_factory=list)
    tasks: list[_Child] = field(default_factory=list)
    services: ServiceWriter | None = None


class Supervisor(Started):
    """`start()` brings the cluster up (raising `DevClusterError` after stopping whatever
    started), `exited()` names a child that died, `stop()` takes everything down."""

    def __init__(
        self,
        cluster: DevCluster,
        *,
        password: str,
        interrupt: threading.Event | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.cluster = cluster
        self._password = password
        self._interrupt = interrupt or threading.Event()
        self._env = dict(os.environ if env is None else env)
        self._started = _Started()
        self._identities: Identities | None = None

    @property
    def gateway_data_dir(self) -> Path:
        return self.cluster.config.data_dir / "gateway"

    @property
    def identities(self) -> Identities:
        """The bootstrapped identities and their tokens (once `start()` got that far)."""
        if self._identities is None:
            raise DevClusterError("the identities are made during start-up")
        return self._identities

    @property
    def master_id(self) -> str:
        """The running master's Mesos id (its `/master/state` `id`)."""
        simulator = self._started.simulator
        if simulator is None or simulator.controls is None:
            raise DevClusterError("the Mesos simulator is not running")
        return simulator.controls.masters[0].id

    # Start -----------------------------------------------------------------------------------

    def start(self) -> Self:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        _check_free(self._addresses())
        self._start_namespaces()
        self._check_interrupt()
        self._start_simulator()
        with httpx.Client(timeout=HTTP_TIMEOUT) as client:
            self._start_gateway(client)
            self._identities = self._make_identities(client)
            self._start_readers(client)
            self._start_tasks()
            self._started.services = ServiceWriter(self.cluster.nodes).start()
            self._wait_ready(client, self._identities.superuser.token)

    def _start_namespaces(self) -> None:
        for node in self.cluster.nodes:
            ns = JournaldNamespace(node.namespace)
            self._started.namespaces.append(ns)
            try:
                ns.start()
            except JournaldError as exc:
                raise DevClusterError(str(exc)) from exc

    def _start_simulator(self) -> None:
        config = self.cluster.config
        simulator = MesosSimulator(
            self.cluster.sim, masters=[(config.master_ip, config.mesos_port)]
        )
        try:
            self._started.simulator = simulator.start()
        except OSError as exc:
            raise DevClusterError(
                f"the Mesos simulator on {self.cluster.mesos_url}: {exc}"
            ) from exc

    def _start_gateway(self, client: httpx.Client) -> None:
        if self.cluster.config.replicas > 1:
            self._start_replicas(client)
            return
        cluster, config = self.cluster, self.cluster.config
        gateway = self._started.gateway = self._spawn(
            "gateway",
            gateway_argv(
                config.master_ip,
                config.gateway_port,
                str(self.gateway_data_dir),
                f"--mesos={cluster.mesos_url}",
                f"--reader-port={config.reader_port}",
                f"--master-reader-url={cluster.master.reader_url}",
            ),
            env={
                **self._env,
                "LOGWAY_IAM_SUPERUSER_PASSWORD": self._password,
                "LOGWAY_GATEWAY_WORKERS": str(config.gateway_workers),
            },
        )
        self._wait(
            f"the gateway's JWKS at {cluster.jwks_url}",
            partial(_answers, client, cluster.jwks_url, 200),
            [gateway],
        )

    def restart_gateway(self) -> str | None:
        """If the (single) gateway exited, start it again on the same address, IAM store and
        keys (so tokens and cookies stay valid), as a service manager would; says what it
        did, or None when the gateway runs. Raises `DevClusterError` when it does not come
        back; replicas behind nginx are not restarted (an exit there stops the cluster)."""
        gateway = self._started.gateway
        if gateway is None or gateway.proc.poll() is None:
            return None
        code = gateway.proc.returncode
        with httpx.Client(timeout=HTTP_TIMEOUT) as client:
            self._start_gateway(client)
        return f"the gateway exited ({code}); restarted it"

    def _start_replicas(self, client: httpx.Client) -> None:
        """PostgreSQL (a throwaway cluster under the data directory, as its own user), the
        gateway replicas on it, nginx in front of them on the gateway's address."""
        cluster, config = self.cluster, self.cluster.config
        pg = PostgresCluster(
            config.data_dir / "postgres", host=config.master_ip, port=config.postgres_port
        )
        pg.remove()  # a previous run's, if it was not stopped cleanly
        self._started.postgres = pg
        try:
            pg.init()
            pg.start()
            url = pg.create_database("logway")
        except (PostgresError, OSError) as exc:
            raise DevClusterError(f"PostgreSQL on {config.master_ip}:{pg.port}: {exc}") from exc
        env = {
            **self._env,
            "LOGWAY_GATEWAY_WORKERS": str(self.cluster.config.gateway_workers),
            "LOGWAY_IAM_SUPERUSER_PASSWORD": self._password,
            "LOGWAY_IAM_DATABASE_URL": url,
            "LOGWAY_IAM_KEY_ENCRYPTION_KEY": secrets.token_urlsafe(48),
        }
        for i, port in enumerate(cluster.replica_ports):
            argv = gateway_argv(
                config.master_ip,
                port,
                str(config.data_dir / f"gateway-{i}"),
                f"--mesos={cluster.mesos_url}",
                f"--reader-port={config.reader_port}",
                f"--master-reader-url={cluster.master.reader_url}",
            )
            self._started.replicas.append(self._spawn(f"gateway replica {i}", argv, env=env))
        for url, replica in zip(cluster.replica_urls, self._started.replicas, strict=True):
            jwks = f"{url}/acs/api/v1/auth/jwks"
            self._wait(
                f"the replica's JWKS at {jwks}", partial(_answers, client, jwks, 200), [replica]
            )
        prefix = config.data_dir / "nginx"
        conf = write_conf(
            prefix,
            f"{config.master_ip}:{config.gateway_port}",
            [f"{config.master_ip}:{p}" for p in cluster.replica_ports],
        )
        nginx = self._started.nginx = self._spawn("nginx", nginx_argv(conf, prefix))
        self._wait(
            f"the gateway's JWKS through nginx at {cluster.jwks_url}",
            partial(_answers, client, cluster.jwks_url, 200),
            [nginx],
        )

    def _make_identities(self, client: httpx.Client) -> Identities:
        data_dir, url = self.cluster.config.data_dir, self.cluster.gateway_url
        try:
            return accounts.bootstrap(client, url, data_dir, self._password)
        except (accounts.AccountError, httpx.HTTPError, OSError) as exc:
            raise DevClusterError(str(exc)) from exc

    def _start_readers(self, client: httpx.Client) -> None:
        nodes, jwks_url = self.cluster.nodes, self.cluster.jwks_url
        for node in nodes:
            argv = node_argv(
                node.namespace,
                node.ip,
                node.reader_port,
                f"--jwks-url={jwks_url}",
                f"--allow-uid={GATEWAY_UID}",
            )
            self._started.readers.append(self._spawn(f"node reader {node.name}", argv))
        for node, reader in zip(nodes, self._started.readers, strict=True):
            self._wait(
                f"the node reader at {node.reader_url}",
                partial(_answers, client, f"{node.reader_url}/v1/fields/STREAM", None),
                [reader],
            )

    def _start_tasks(self) -> None:
        for task in self.cluster.tasks:
            argv = ship_argv(
                task.agent.namespace,
                *task.argv,
                agent_id=task.agent_id,
                framework_id=task.framework_id,
                executor_id=task.executor_id,
                container_id=task.container_id,
                task_id=task.task.id,
                identifier=task.task.name,
            )
            self._started.tasks.append(self._spawn(f"task {task.task.id}", argv))

    def _wait_ready(self, client: httpx.Client, token: str) -> None:
        """Every node's journal and every task's lines answer through the gateway."""
        base = f"{self.cluster.gateway_url}/system/v1"
        paths = [f"{base}/logs/v1/range/?skip_prev=1"]
        for agent in self.cluster.agents:
            paths.append(f"{base}/agent/{agent.agent_id}/logs/v1/range/?skip_prev=1")
        for task in self.cluster.tasks:
            paths.append(f"{base}/agent/{task.agent_id}/logs/v1/range/{task.v1_path}?skip_prev=1")
        headers = {"Authorization": f"token={token}"}
        for url in paths:
            self._wait(
                f"{url} through the gateway",
                partial(_answers, client, url, 200, headers),
                self.children,
            )

    def _addresses(self) -> list[tuple[str, int]]:
        config = self.cluster.config
        master = [(config.master_ip, config.mesos_port), (config.master_ip, config.gateway_port)]
        if config.replicas > 1:
            master += [(config.master_ip, p) for p in self.cluster.replica_ports]
            master.append((config.master_ip, config.postgres_port))
        return master + [(node.ip, node.reader_port) for node in self.cluster.nodes]

    def _spawn(self, name: str, argv: list[str], *, env: Mapping[str, str] | None = None) -> _Child:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            env=dict(self._env if env is None else env),
            process_group=0,  # a terminal's Ctrl-C is ours to handle, in order
        )
        return _Child(name, proc)

    def _wait(self, what: str, ready: Callable[[], bool], watch: Iterable[_Child]) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        watched = list(watch)
        while not ready():
            for child in watched:
                if child.proc.poll() is not None:
                    raise DevClusterError(
                        f"{child.name} exited ({child.proc.returncode}) while waiting for {what}"
                    )
            if time.monotonic() > deadline:
                raise DevClusterError(f"timed out waiting for {what}")
            if self._interrupt.wait(POLL_INTERVAL):
                raise Interrupted()

    def _check_interrupt(self) -> None:
        if self._interrupt.is_set():
            raise Interrupted()

    # Running ---------------------------------------------------------------------------------

    @property
    def children(self) -> list[_Child]:
        s = self._started
        front = [*([s.gateway] if s.gateway else []), *s.replicas, *([s.nginx] if s.nginx else [])]
        return [*front, *s.readers, *s.tasks]

    def exited(self) -> str | None:
        """Which child has exited, with its status; None while all run."""
        for child in self.children:
            if child.proc.poll() is not None:
                return f"{child.name} exited ({child.proc.returncode})"
        return None

    # Stop ------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Everything started, in reverse; safe to call more than once."""
        s = self._started
        self._started = _Started()
        if s.services is not None:
            s.services.stop()
        _terminate(s.tasks)
        _terminate([*s.readers, *([s.gateway] if s.gateway else [])])
        _terminate([*([s.nginx] if s.nginx else []), *s.replicas])
        if s.postgres is not None:
            with contextlib.suppress(PostgresError):
                s.postgres.stop()
            s.postgres.remove()
        if s.simulator is not None:
            s.simulator.stop()
        for ns in reversed(s.namespaces):
            ns.stop()


def _answers(
    client: httpx.Client,
    url: str,
    status: int | None,
    headers: Mapping[str, str] | None = None,
) -> bool:
    """`url` answers with `status` (None: with anything at all)."""
    try:
        got = client.get(url, headers=headers).status_code
    except httpx.TransportError:
        return False
    return status is None or got == status


def _check_free(addresses: Iterable[tuple[str, int]]) -> None:
    """Fail at once, naming the address, rather than talk to someone else's server."""
    for host, port in addresses:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError as exc:
                raise DevClusterError(
                    f"{host}:{port} is not free ({exc.strerror}): is another logway dev running?"
                ) from exc


def _terminate(children: list[_Child]) -> None:
    """SIGTERM all at once, then wait; SIGKILL (with their own children: a shipper's task runs
    in its own process group) whatever is still there after STOP_TIMEOUT."""
    for child in children:
        if child.proc.poll() is None:
            child.proc.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT
    for child in children:
        try:
            child.proc.wait(max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            for pid in _children_of(child.proc.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            child.proc.kill()
            child.proc.wait()


def _children_of(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]
