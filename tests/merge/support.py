"""A small cluster for the merged-read tests, every part real: one journald namespace and one
`logway node` per agent on 127.0.0.81-.84, the Mesos simulator on .85, `logway gateway`s on
.86/.87, users and grants made through the IAM API.

    S0 (.81)  /prod/web  role prod      /dev/worker     role dev
    S1 (.82)  /prod/web  role prod      /devops/api     role dev
    S2 (.83)  /prod/web  role prod      /production/api role prod
    S3 (.84)  (not in the cluster until a test adds it)

Tests write task lines with the shipper's fields plus `TEST_RUN=<their own id>` and read
with `filter=TEST_RUN:<id>`, so they never see each other's lines.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import httpx
import orjson

from app.devcluster.journald import JournaldNamespace
from app.devcluster.mesos import MesosSimulator, SimCluster
from tests.conftest import new_namespace_name
from tests.gateway.support import (
    GATEWAY_UID,
    Reader,
    add_user,
    grant,
    login,
    node_headers,
    port_free_on,
)
from tests.support.gateway import gateway as support_gateway
from tests.support.journal import Sender
from tests.support.tasks import RUN, NumberedLines, TaskDef
from tests.support.tasks import sim_cluster as tasks_cluster
from tests.support.wait import wait_for as wait_for_default

PASSWORD = "admin password for merge tests"
HOSTS = ("127.0.0.81", "127.0.0.82", "127.0.0.83", "127.0.0.84")
MESOS_HOST, GATEWAY_HOST, CAPPED_HOST = "127.0.0.85", "127.0.0.86", "127.0.0.87"
MASTER_ID = "6a1e5c0d-0000-4000-8000-0000000f0081"
AGENTS = tuple(f"{MASTER_ID}-S{i}" for i in range(len(HOSTS)))
MARATHON = f"{MASTER_ID}-0000"
PREFIX = "/system/v1/logs/v1"
DEADLINE = 60.0  # for whatever a test waits on
LOG_TAIL = 6000
T = TypeVar("T")

# The gateway under test refreshes its cluster state and its streams' membership fast.
GATEWAY_ENV = {
    "LOGWAY_GATEWAY_MESOS_POLL_PERIOD": "0.3",
    "LOGWAY_GATEWAY_MESOS_REFRESH_MIN_INTERVAL": "0.2",
    "LOGWAY_GATEWAY_MERGE_MEMBERSHIP_PERIOD": "0.2",
    "LOGWAY_GATEWAY_MERGE_MAX_STREAMS_PER_IDENTITY": "4",
}
CAPPED_ENV = {
    **GATEWAY_ENV,
    "LOGWAY_GATEWAY_MERGE_MAX_STREAMS_PER_IDENTITY": "1",
    "LOGWAY_GATEWAY_MERGE_MAX_AGENTS": "2",
}


def _task(app: str, role: str, agent: int, name: str) -> TaskDef:
    return TaskDef(app, role, AGENTS[agent], name, MARATHON)


WEB = tuple(_task("/prod/web", "prod", i, f"web-{i}") for i in range(3))
DEV = _task("/dev/worker", "dev", 0, "dev-0")
DEVOPS = _task("/devops/api", "dev", 1, "devops-1")
PRODUCTION = _task("/production/api", "prod", 2, "production-2")
TASKS = (*WEB, DEV, DEVOPS, PRODUCTION)
LATE_WEB = _task("/prod/web", "prod", 3, "web-3")  # on S3, added by tests
SECOND_WEB = _task("/prod/web", "prod", 0, "web-0b")  # a second instance on S0, likewise


def sim_cluster() -> SimCluster:
    agents = dict(zip(AGENTS[:3], HOSTS[:3], strict=True))
    return tasks_cluster(MASTER_ID, agents, TASKS, framework_id=MARATHON, role="prod")


@dataclass
class Env:
    tmp: Path
    base: str
    sim: MesosSimulator
    readers: dict[str, Reader]  # by agent id
    senders: dict[str, Sender]  # by agent id
    admin: dict[str, str]
    users: dict[str, dict[str, str]]  # uid -> headers
    reader_port: int
    _lines: NumberedLines = field(init=False)

    def __post_init__(self) -> None:
        self._lines = NumberedLines(self.senders)

    def get(self, path: str, headers: Mapping[str, str], **params: object) -> httpx.Response:
        return httpx.get(self.base + path, headers=dict(headers), params=params, timeout=30)  # type: ignore[arg-type]

    def write(self, task: TaskDef, run: str, count: int = 1) -> list[int]:
        """`count` lines of `task` into its agent's journal; returns their SEQ numbers
        (increasing per task and run)."""
        return self._lines.write(task, run, count, SYSLOG_IDENTIFIER="merge-test")

    def written(self, task: TaskDef, run: str) -> int:
        return self._lines.written(task, run)

    def sync(self) -> None:
        for sender in self.senders.values():
            sender.sync()

    def direct(self, task: TaskDef, run: str) -> list[dict[str, object]]:
        """The task's lines of `run`, read from its node reader directly (NDJSON)."""
        query = {"filter": [f"CONTAINER_ID:{task.container}", f"{RUN}:{run}"]}
        r = httpx.get(
            self.readers[task.agent_id].url + "/v1/range/",
            params=query,
            headers={
                **node_headers(self.tmp / "gateway", self.readers[task.agent_id].url),
                "Accept": "application/json",
            },
            timeout=30,
        )
        assert r.status_code in (200, 204), r.text
        return [orjson.loads(line) for line in r.content.splitlines() if line]

    @contextlib.contextmanager
    def gateway(self, env: Mapping[str, str], host: str) -> Iterator[str]:
        log = self.tmp / f"gateway-{host}.log"
        try:
            with support_gateway(
                self.tmp / "gateway",
                f"--mesos={self.sim.urls[0]}",
                f"--reader-port={self.reader_port}",
                password=PASSWORD,
                host=host,
                extra_env=dict(env),
                log_path=log,
            ) as base:
                yield base
        except BaseException:
            print(f"--- {log.name} ---\n{log.read_text(errors='replace')[-LOG_TAIL:]}")
            raise


@contextlib.contextmanager
def merge_env(tmp: Path) -> Iterator[Env]:
    port = port_free_on(HOSTS)
    with contextlib.ExitStack() as stack:
        namespaces = [stack.enter_context(JournaldNamespace(new_namespace_name())) for _ in HOSTS]
        sim = stack.enter_context(MesosSimulator(sim_cluster(), masters=[(MESOS_HOST, 0)]))
        env = Env(tmp, "", sim, {}, {}, {}, {}, port)
        base = stack.enter_context(env.gateway(GATEWAY_ENV, GATEWAY_HOST))
        env.base = base
        jwks = f"{base}/acs/api/v1/auth/jwks"
        for agent, host, ns in zip(AGENTS, HOSTS, namespaces, strict=True):
            reader = Reader(ns.name, host, port, jwks, tmp / f"reader-{host}.log")
            stack.callback(reader.stop)
            env.readers[agent] = reader.start()
            env.senders[agent] = sender = Sender(ns)
            stack.callback(sender.close)
        env.admin = login(base, "admin", PASSWORD)
        add_user(base, env.admin, GATEWAY_UID, "gateway test password")
        env.users["dev"] = add_user(base, env.admin, "dev", "dev password")
        grant(base, env.admin, "dcos:mesos:agent:task:app_id:/dev", "dev")
        env.users["prodrole"] = add_user(base, env.admin, "prodrole", "prodrole password")
        grant(base, env.admin, "dcos:mesos:agent:framework:role:prod", "prodrole")
        env.users["nobody"] = add_user(base, env.admin, "nobody", "nobody password")
        wait_for("the gateway's first cluster state", lambda: _ready(env))
        yield env


def _ready(env: Env) -> bool | None:
    r = env.get(f"{PREFIX}/app/prod/web/range/", env.admin, limit=1)
    return r.status_code in (200, 204) or None


def new_run() -> str:
    return uuid.uuid4().hex


def wait_for(what: str, check: Callable[[], T | None], *, timeout: float = DEADLINE) -> T:
    """`tests.support.wait.wait_for`, with this package's longer deadline."""
    return wait_for_default(what, check, timeout=timeout)


# Reading merged streams ---------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    id: str
    fields: dict[str, str]

    @property
    def key(self) -> tuple[str, int]:
        """(container, SEQ): which line of which task."""
        return self.fields["CONTAINER_ID"], int(self.fields["SEQ"])


class Stream:
    """A merged SSE stream read in a thread, so a test can wait for events with deadlines.
    `stop_when`: the reading thread leaves (shuts the socket) right after the first event
    that satisfies it, as a client that disconnects at that very event."""

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str],
        stop_when: Callable[[Event], bool] | None = None,
        **params: object,
    ) -> None:
        self.events: list[Event] = []
        self.stopped = threading.Event()
        self._stop_when = stop_when
        self.comments: list[str] = []
        self.status: int | None = None
        self.error: BaseException | None = None
        self._client = httpx.Client(timeout=httpx.Timeout(30.0, read=None))
        request = self._client.build_request(
            "GET",
            url,
            headers={**headers, "Accept": "text/event-stream"},
            params=params,  # type: ignore[arg-type]
        )
        self._response = self._client.send(request, stream=True)
        self.status = self._response.status_code
        self._thread = threading.Thread(target=self._read, name="merged-stream", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        event_id: str | None = None
        data: bytes | None = None
        try:
            for line in self._response.iter_lines():
                if line == "":
                    if data is not None and event_id is not None:
                        event = Event(event_id, orjson.loads(data)["fields"])
                        self.events.append(event)
                        if self._stop_when is not None and self._stop_when(event):
                            self._shut()
                            return
                    event_id = data = None
                elif line.startswith("id: "):
                    event_id = line[4:]
                elif line.startswith("data: "):
                    data = line[6:].encode()
                elif line.startswith(":"):
                    self.comments.append(line[1:].strip())
        except (httpx.HTTPError, OSError) as exc:  # closed by the test, or broken
            self.error = exc
        finally:
            self.stopped.set()

    def _shut(self) -> None:
        network = self._response.extensions.get("network_stream")
        sock = network.get_extra_info("socket") if network is not None else None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def wait(self, what: str, check: Callable[[Stream], bool], timeout: float = DEADLINE) -> None:
        wait_for(what, lambda: check(self) or None, timeout=timeout)

    def count(self, n: int, timeout: float = DEADLINE) -> None:
        self.wait(f"{n} events (have {len(self.events)})", lambda s: len(s.events) >= n, timeout)

    @property
    def last_id(self) -> str:
        return self.events[-1].id

    def close(self) -> None:
        """Leave as a client does: the socket shut, which also wakes the reading thread."""
        self._shut()
        self._thread.join(timeout=10)
        assert not self._thread.is_alive(), "the stream's reader did not stop"
        self._response.close()
        self._client.close()

    def __enter__(self) -> Stream:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class Writer:
    """Writes lines of `tasks` round-robin in a thread until the `with` block ends."""

    def __init__(self, env: Env, tasks: tuple[TaskDef, ...], run: str, pause: float = 0.01):
        self.env, self.tasks, self.run, self.pause = env, tasks, run, pause
        self.written: dict[str, int] = {t.container: 0 for t in tasks}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._write, name="merge-writer")

    def _write(self) -> None:
        while not self._stop.is_set():
            for task in self.tasks:
                self.env.write(task, self.run, 3)
                self.written[task.container] += 3
            time.sleep(self.pause)

    def total(self) -> int:
        return sum(self.written.values())

    def more_than(self, n: int) -> bool | None:
        return self.total() > n or None

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()
