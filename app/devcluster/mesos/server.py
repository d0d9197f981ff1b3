"""`MesosSimulator`: one uvicorn server per simulated master, each on its own thread and
address (`127.0.0.2`, `127.0.0.3`, … as Admin Router's harness does), all serving one state.

    with MesosSimulator(SimCluster.sample(), masters=[("127.0.0.2", 0), ("127.0.0.3", 0)]) as sim:
        sim.urls            # ["http://127.0.0.2:41234", "http://127.0.0.3:40321"]
        sim.fail_over(1)    # master 1 leads, master 0 answers 307 to it
        sim.stop_master(0)  # connection refused until sim.start_master(0)
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Self

import uvicorn
from starlette.applications import Starlette

from app.devcluster.lifecycle import Started
from app.devcluster.mesos.app import create_master_app
from app.devcluster.mesos.control import Controls, Fault, RecordedRequest
from app.devcluster.mesos.document import StateDocument
from app.devcluster.mesos.model import SimAgent, SimCluster, SimFramework, SimMaster, SimTask

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


class _Server:
    """uvicorn on a socket bound before it starts (so port 0 works and the port is known)."""

    def __init__(self, host: str, port: int) -> None:
        self.app: Starlette | None = None
        self.host = host
        self.port = port
        self.stopping = False
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._lifecycle = threading.RLock()

    def bind(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart on the same port
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self._socket = sock

    def start(self, app: Starlette | None = None) -> None:
        """Start, unless running. Waits for a stop under way (its thread may be draining)."""
        with self._lifecycle:
            if self._server is None:
                self._start(app)

    def _start(self, app: Starlette | None) -> None:
        self.app = app or self.app
        assert self.app is not None
        if self._socket is None:
            self.bind()
        self.stopping = False
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            ws="none",
            timeout_graceful_shutdown=1,
        )
        server = self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=server.run,
            kwargs={"sockets": [self._socket]},
            name=f"mesos-sim-{self.host}:{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()  # re-entrant: we hold the lifecycle lock
                raise RuntimeError(f"simulated master {self.host}:{self.port} did not start")
            time.sleep(0.005)

    def signal_stop(self) -> None:
        self.stopping = True
        if self._server is not None:
            self._server.should_exit = True

    def stop(self) -> None:
        with self._lifecycle:
            self.signal_stop()
            if self._thread is not None:
                self._thread.join(STOP_TIMEOUT)
            if self._socket is not None:
                self._socket.close()
            self._server = self._thread = self._socket = None


class MesosSimulator(Started):
    """Simulated Mesos masters serving `source`: a `SimCluster`, a `StateDocument`, or the
    path of a captured `/master/state` (served verbatim until changed).

    `masters`: (host, port) per master, port 0 for any free one; `leader`: index or None.
    A context manager; `start()`/`stop()` for other owners. The control methods below are
    also served over HTTP under `/__sim__/` (see `sim_api`).
    """

    def __init__(
        self,
        source: SimCluster | StateDocument | Path,
        *,
        masters: Sequence[tuple[str, int]] = (("127.0.0.1", 0),),
        leader: int | None = 0,
    ) -> None:
        if not masters:
            raise ValueError("need at least one master")
        if isinstance(source, SimCluster):
            document = StateDocument.from_cluster(source)
        elif isinstance(source, Path):
            document = StateDocument.from_file(source)
        else:
            document = source
        self._pending = list(masters)
        self._servers: list[_Server] = []
        self.document = document
        self.controls: Controls | None = None
        self._leader = leader

    # Lifecycle -------------------------------------------------------------------------------

    def start(self) -> Self:
        servers = self._servers = [_Server(host, port) for host, port in self._pending]
        try:
            for server in servers:
                server.bind()
            masters = tuple(SimMaster(s.host, s.port) for s in servers)
            self.controls = Controls(self.document, masters, self._leader)
            for index, server in enumerate(servers):
                server.start(create_master_app(self.controls, index, self))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for server in self._servers:  # all at once: each takes a tick of its loop to exit
            server.signal_stop()
        for server in self._servers:
            server.stop()

    def stopping(self, master: int) -> bool:
        return self._servers[master].stopping

    def stop_master(self, master: int) -> None:
        """Connection refused on that master's address until `start_master`."""
        self._servers[master].stop()

    def start_master(self, master: int) -> None:
        self._servers[master].start()

    # Addresses -------------------------------------------------------------------------------

    @property
    def urls(self) -> list[str]:
        return [f"http://{s.host}:{s.port}" for s in self._servers]

    @property
    def leader_url(self) -> str | None:
        leader = self._controls.leader
        return None if leader is None else f"http://{leader.host}:{leader.port}"

    # Faults ----------------------------------------------------------------------------------

    def fail_over(self, to: int | None) -> None:
        """Master `to` leads from now on (None: no leader is elected)."""
        self._controls.set_leader(to)

    def set_fault(self, fault: Fault | None, *, master: int | None = None) -> None:
        self._controls.set_fault(fault, master)

    def fail(self, status: int = 503, *, master: int | None = None) -> None:
        self.set_fault(Fault("status", status=status), master=master)

    def stall(self, seconds: float, *, master: int | None = None) -> None:
        self.set_fault(Fault("stall", seconds=seconds), master=master)

    def trickle(self, seconds: float, *, master: int | None = None) -> None:
        """Answer at once, then send the body a byte every `seconds`."""
        self.set_fault(Fault("trickle", seconds=seconds), master=master)

    def garbage(self, *, master: int | None = None) -> None:
        self.set_fault(Fault("garbage"), master=master)

    def heal(self, *, master: int | None = None) -> None:
        self.set_fault(None, master=master)

    # State -----------------------------------------------------------------------------------

    def add_agent(self, agent: SimAgent) -> None:
        self.document.add_agent(agent)

    def remove_agent(self, agent_id: str) -> bool:
        return self.document.remove_agent(agent_id)

    def add_framework(self, framework: SimFramework) -> None:
        self.document.add_framework(framework)

    def reregister_framework(self, framework_id: str, host: str, *, webui_url: str = "") -> None:
        """The framework's scheduler registers again from `host` (e.g. Marathon's leader moved)."""
        self.document.reregister_framework(framework_id, host=host, webui_url=webui_url)

    def disconnect_framework(self, framework_id: str) -> None:
        self.document.disconnect_framework(framework_id)

    def add_task(self, task: SimTask) -> None:
        self.document.add_task(task)

    def remove_task(self, task_id: str) -> bool:
        return self.document.remove_task(task_id)

    # Requests --------------------------------------------------------------------------------

    def requests(self, path: str | None = None, master: int | None = None) -> list[RecordedRequest]:
        return self._controls.requests(path, master)

    def count(self, path: str | None = None, master: int | None = None) -> int:
        return self._controls.count(path, master)

    def reset_requests(self) -> None:
        self._controls.reset_requests()

    @property
    def _controls(self) -> Controls:
        if self.controls is None:
            raise RuntimeError("the simulator is not started")
        return self.controls
