"""The fan-out section (`--only fanout`): many SSE followers through one gateway over the
nodes of a small cluster, in two shapes (issue 17, target 2).

- broadcast: every follower follows the same node's journal (`/v1/stream/?skip_prev=1` on
  agent S0); one line is written, stamped with its send time; each follower notes when it
  arrives. `lines` such lines, one at a time, each judged on its own (p50/p99 over the
  followers); medians over the lines.
- spread: each follower follows its own task (v1 task stream), the tasks spread over the
  agents; a writer process paces `rate` lines/s over the tasks for `seconds`; p50/p99 of
  send -> client over every line.

Every part is real and started here: a journald namespace and a `logway node` per agent
(127.62.0.1…), the Mesos simulator (127.62.0.100), `logway gateway` (127.62.0.101); the
followers are bare asyncio connections in a few client processes (`bench.fanout_client`).
Figures: p50/p99, lines lost and duplicated, followers dropped, the gateway's and each
node reader's RSS (VmRSS, VmHWM), CPU seconds of each while the lines flowed.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import resource
import secrets
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.authz.route_table import SYSTEM_LOGS_RID
from app.devcluster.journald import JournaldNamespace
from app.devcluster.mesos import MesosSimulator, SimAgent, SimCluster
from bench import report
from bench.cluster import add_user, grant_read, login, node_token, wait_resolved
from bench.fanout_client import Clients, Mark
from bench.fill import KeepAlive, NativeWriter
from bench.report import Verdict
from bench.servers import (
    Server,
    cpu_seconds,
    free_port,
    logway_gateway,
    node_reader,
    status_field,
)

NODE_NET = "127.62.0"
MESOS_HOST, GATEWAY_HOST = f"{NODE_NET}.100", f"{NODE_NET}.101"
MASTER_ID = "b0e5c1a2-0000-4000-8000-00000000fa17"
GATEWAY_UID = "logway-gateway"
READER_UID = "bench-fanout"
JWKS_PATH = "/acs/api/v1/auth/jwks"
FRAMEWORK = f"{MASTER_ID}-0000"
FOLLOWERS = 10_000
AGENTS = 4
BROADCAST_P99_MS = 250.0
SPREAD_P99_MS = 100.0
RSS_LIMIT_MIB = 1024.0
RATE = 2000
SECONDS = 10.0
LINES = 5  # broadcast lines per run, one at a time
LINE_GAP = 5.0  # seconds between two broadcast lines
GRACE = 10.0
TICK = 0.005
READY_TIMEOUT = 60.0
PROCESSES = 4  # client processes
# Gateway worker processes (app/core/workers.py): one per core here.
WORKERS = 2
FD_SPARE = 500  # the gateway's own files, the IAM store, its Mesos client


@dataclass(frozen=True, slots=True)
class Plan:
    followers: int = FOLLOWERS
    agents: int = AGENTS
    runs: int = 3
    processes: int = PROCESSES
    workers: int = WORKERS
    rate: int = RATE
    seconds: float = SECONDS
    lines: int = LINES


@dataclass(frozen=True, slots=True)
class FanCluster:
    gateway: Server
    readers: tuple[Server, ...]
    sockets: tuple[Path, ...]
    agents: tuple[str, ...]
    token: str


@dataclass(frozen=True, slots=True)
class Outcome:
    shape: str
    connected: int
    failed: int
    connect_seconds: float
    sent: int  # deliveries expected
    received: int
    duplicated: int
    dropped: int  # followers whose connection closed
    p50_ms: float
    p99_ms: float
    gateway_rss: int
    gateway_hwm: int
    reader_rss: tuple[int, ...]
    gateway_cpu: float
    reader_cpu: float
    client_cpu: float  # the follower processes': they share the cores
    write_seconds: float

    @property
    def lost(self) -> int:
        return self.sent - self.received


@contextlib.contextmanager
def fan_cluster(agents: int, followers: int, workers: int = 1) -> Iterator[FanCluster]:
    password = secrets.token_urlsafe(24)
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="logway-bench-fan-")))
        hosts = [f"{NODE_NET}.{i + 1}" for i in range(agents)]
        ids = tuple(f"{MASTER_ID}-S{i}" for i in range(agents))
        namespaces = []
        for i in range(agents):
            ns = stack.enter_context(JournaldNamespace(f"benchfan{os.getpid()}x{i}"))
            stack.enter_context(KeepAlive(ns.runtime_dir / "stdout"))
            namespaces.append(ns)
        reader_port = free_port(hosts[0])
        mesos = SimCluster(master_id=MASTER_ID)
        mesos.agents = [SimAgent(a, h) for a, h in zip(ids, hosts, strict=True)]
        sim = stack.enter_context(MesosSimulator(mesos, masters=[(MESOS_HOST, 0)]))
        gw = stack.enter_context(
            logway_gateway(
                tmp / "gateway",
                host=GATEWAY_HOST,
                mesos=sim.urls[0],
                reader_port=reader_port,
                password=password,
                # One bench user holds every follower.
                settings={
                    "LOGWAY_GATEWAY_MAX_FOLLOWS_PER_IDENTITY": str(followers + 100),
                    "LOGWAY_GATEWAY_WORKERS": str(workers),
                },
            )
        )
        gw.start(JWKS_PATH)
        with httpx.Client(base_url=gw.base_url, timeout=30) as http:
            admin = login(http, "admin", password)
            add_user(http, admin, GATEWAY_UID)
            token = add_user(http, admin, READER_UID)
            grant_read(http, admin, SYSTEM_LOGS_RID, READER_UID)
        auth = (f"--jwks-url={gw.base_url}{JWKS_PATH}", f"--allow-uid={GATEWAY_UID}")
        readers = []
        for host, ns in zip(hosts, namespaces, strict=True):
            reader = stack.enter_context(
                node_reader(ns.name, host=host, port=reader_port, auth=auth)
            )
            reader_token = node_token(tmp / "gateway", host, reader_port)
            reader.start("/v1/fields/STREAM", headers={"Authorization": f"token={reader_token}"})
            readers.append(reader)
        _wait_resolved(gw.base_url, ids, token)
        print(
            f"Mesos simulator {sim.urls[0]} ({agents} agents); gateway pid {gw.pid} at "
            f"{gw.base_url}; node readers "
            + ", ".join(f"pid {r.pid} at {r.base_url}" for r in readers),
            flush=True,
        )
        sockets = tuple(ns.socket for ns in namespaces)
        yield FanCluster(gw, tuple(readers), sockets, ids, token)


def _wait_resolved(base_url: str, agents: Sequence[str], token: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    for agent in agents:
        wait_resolved(
            f"{base_url}/system/v1/agent/{agent}/logs/v1/range/?skip_prev=1",
            token,
            ok=(200, 204),
            timeout=max(0.0, deadline - time.monotonic()),
            what=f"reached {agent}",
        )


def _task(nonce: str, i: int) -> tuple[str, str]:
    """(executor id, container id) of spread task `i`."""
    return f"fan-{nonce}-{i:05d}.exec", f"fan-{nonce}-{i:05d}"


def _spread_paths(agents: Sequence[str], nonce: str, count: int) -> list[str]:
    paths = []
    for i in range(count):
        executor, container = _task(nonce, i)
        paths.append(
            f"/system/v1/agent/{agents[i % len(agents)]}/logs/v1/stream/framework/{FRAMEWORK}"
            f"/executor/{executor}/container/{container}?skip_prev=1"
        )
    return paths


def _mark_line(marker: str, seq: int, fields: str = "") -> bytes:
    return (
        f"{fields}SYSLOG_IDENTIFIER=bench-fanout\nSTREAM=STDOUT\n"
        f"MESSAGE={marker} {seq} {time.time_ns()}\n"
    ).encode()


def _spread_writer(
    sockets: Sequence[Path],
    agents: Sequence[str],
    nonce: str,
    marker: str,
    tasks: int,
    rate: int,
    seconds: float,
    out: multiprocessing.connection.Connection,
) -> None:
    """Paces `rate` lines/s over the tasks; sends back (seq -> follower, send ns)."""
    writers = [NativeWriter(s) for s in sockets]
    sent: dict[int, tuple[int, int]] = {}
    total = int(rate * seconds)
    started = time.monotonic()
    seq = 0
    while seq < total:
        due = min(total, int((time.monotonic() - started) * rate) + 1)
        while seq < due:
            task = seq % tasks
            executor, container = _task(nonce, task)
            fields = (
                f"AGENT_ID={agents[task % len(agents)]}\nFRAMEWORK_ID={FRAMEWORK}\n"
                f"EXECUTOR_ID={executor}\nCONTAINER_ID={container}\n"
            )
            line = _mark_line(marker, seq, fields)
            writers[task % len(writers)].send(line)
            sent[seq] = (task, int(line.rsplit(b" ", 1)[1]))
            seq += 1
        time.sleep(TICK)
    out.send((sent, time.monotonic() - started))


def _latencies(marks: list[Mark], sent: dict[int, tuple[int, int]]) -> tuple[list[float], int]:
    """Milliseconds send -> arrival of every expected delivery; and how many arrived."""
    millis = []
    received = 0
    for m in marks:
        expected = sent.get(m.seq)
        if expected is None or expected[0] not in (-1, m.follower):
            continue
        received += 1
        millis.append((m.arrived_ns - expected[1]) / 1e6)
    millis.sort()
    return millis, received


def _pct(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def _tree_field(pid: int, field: str) -> int:
    """`status_field` summed over `pid` and its children (the gateway's workers)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return status_field(pid, field) + sum(_tree_field(int(c), field) for c in children)


def _cpu(c: FanCluster, clients: Clients) -> tuple[float, float, float]:
    return (
        cpu_seconds(c.gateway.pid),
        sum(cpu_seconds(r.pid) for r in c.readers),
        sum(cpu_seconds(pid) for pid in clients.pids),
    )


def _connect(
    c: FanCluster, paths: Sequence[str], marker: str, plan: Plan
) -> tuple[Clients, int, int, float]:
    started = time.monotonic()
    clients = Clients(
        c.gateway.host, c.gateway.port, c.token, paths, marker.encode(), plan.processes
    )
    try:
        connected, failed = clients.connect()
    except BaseException:
        clients.close()
        raise
    return clients, connected, failed, time.monotonic() - started


def broadcast(c: FanCluster, plan: Plan) -> Outcome:
    marker = f"fanout-{uuid.uuid4().hex[:12]}"
    path = f"/system/v1/agent/{c.agents[0]}/logs/v1/stream/?skip_prev=1"
    clients, connected, failed, connect_seconds = _connect(c, [path] * plan.followers, marker, plan)
    try:
        time.sleep(1.0)  # the last followers' first bytes have arrived
        writer = NativeWriter(c.sockets[0])
        sent: dict[int, tuple[int, int]] = {}
        cpu0 = _cpu(c, clients)
        started = time.monotonic()
        per_line: list[tuple[float, float]] = []
        for seq in range(plan.lines):
            line = _mark_line(marker, seq)
            writer.send(line)
            sent[seq] = (-1, int(line.rsplit(b" ", 1)[1]))
            time.sleep(LINE_GAP)
        write_seconds = time.monotonic() - started
        time.sleep(GRACE)  # the last line's slowest deliveries
        cpu1 = _cpu(c, clients)
        gateway_rss, gateway_hwm = (
            _tree_field(c.gateway.pid, "VmRSS"),
            _tree_field(c.gateway.pid, "VmHWM"),
        )
        reader_rss = tuple(status_field(r.pid, "VmRSS") for r in c.readers)
        marks, duplicated, dropped = clients.report()
    finally:
        clients.close()
    for seq in sent:
        millis, _ = _latencies([m for m in marks if m.seq == seq], {seq: sent[seq]})
        per_line.append((_pct(millis, 50), _pct(millis, 99)))
    _, received = _latencies(marks, sent)
    return Outcome(
        "broadcast",
        connected,
        failed,
        connect_seconds,
        connected * len(sent),
        received,
        duplicated,
        dropped,
        report.median([p[0] for p in per_line]),
        report.median([p[1] for p in per_line]),
        gateway_rss,
        gateway_hwm,
        reader_rss,
        cpu1[0] - cpu0[0],
        cpu1[1] - cpu0[1],
        cpu1[2] - cpu0[2],
        write_seconds,
    )


def spread_count(followers: int, workers: int) -> int:
    """A gateway process holds two sockets per spread follower (the caller's and its own
    upstream): as many followers as its workers' file descriptor limit (inherited from us)
    allows, the kernel spreading them about evenly over the workers."""
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return min(followers, workers * (limit - FD_SPARE) // 2)


def spread(c: FanCluster, plan: Plan) -> Outcome:
    nonce = uuid.uuid4().hex[:8]
    marker = f"fanout-{nonce}"
    count = spread_count(plan.followers, plan.workers)
    if count < plan.followers:
        print(f"spread: {count} followers, not {plan.followers}: the fd limit allows no more")
    paths = _spread_paths(c.agents, nonce, count)
    clients, connected, failed, connect_seconds = _connect(c, paths, marker, plan)
    try:
        time.sleep(1.0)
        ctx = multiprocessing.get_context("fork")
        here, there = ctx.Pipe()
        args = (c.sockets, c.agents, nonce, marker, count, plan.rate, plan.seconds, there)
        cpu0 = _cpu(c, clients)
        writer = ctx.Process(target=_spread_writer, args=args, daemon=True)
        writer.start()
        sent, write_seconds = here.recv()
        writer.join()
        cpu1 = _cpu(c, clients)
        time.sleep(GRACE)
        gateway_rss, gateway_hwm = (
            _tree_field(c.gateway.pid, "VmRSS"),
            _tree_field(c.gateway.pid, "VmHWM"),
        )
        reader_rss = tuple(status_field(r.pid, "VmRSS") for r in c.readers)
        marks, duplicated, dropped = clients.report()
    finally:
        clients.close()
    millis, received = _latencies(marks, sent)
    return Outcome(
        "spread",
        connected,
        failed,
        connect_seconds,
        len(sent),
        received,
        duplicated,
        dropped,
        _pct(millis, 50),
        _pct(millis, 99),
        gateway_rss,
        gateway_hwm,
        reader_rss,
        cpu1[0] - cpu0[0],
        cpu1[1] - cpu0[1],
        cpu1[2] - cpu0[2],
        write_seconds,
    )


def _row(o: Outcome) -> list[str]:
    return [
        o.shape,
        f"{o.connected}/{o.connected + o.failed}",
        f"{o.connect_seconds:.0f} s",
        f"{o.received:,}/{o.sent:,}",
        str(o.duplicated),
        str(o.dropped),
        f"{o.p50_ms:.0f}",
        f"{o.p99_ms:.0f}",
        report.mib(o.gateway_rss),
        report.mib(max(o.reader_rss)),
        f"{o.gateway_cpu:.1f}",
        f"{o.reader_cpu:.1f}",
        f"{o.client_cpu:.1f}",
        f"{o.gateway_cpu / max(1, o.received) * 1e6:.0f}",
    ]


HEADER = [
    "shape",
    "connected",
    "ramp",
    "delivered",
    "dup",
    "dropped",
    "p50 ms",
    "p99 ms",
    "gateway RSS",
    "max reader RSS",
    "gw cpu s",
    "readers cpu s",
    "clients cpu s",
    "gw cpu µs/delivery",
]


def run(plan: Plan) -> list[Verdict]:
    results: dict[str, list[Outcome]] = defaultdict(list)
    with fan_cluster(plan.agents, plan.followers, plan.workers) as c:
        for n in range(1, plan.runs + 1):
            print(report.section(f"fan-out through the gateway, run {n}/{plan.runs}"), flush=True)
            rows = []
            for shape in (broadcast, spread):
                outcome = shape(c, plan)
                results[outcome.shape].append(outcome)
                rows.append(_row(outcome))
                print(report.table(HEADER, [rows[-1]]), flush=True)
    return _verdicts(plan, results)


def _verdicts(plan: Plan, results: dict[str, list[Outcome]]) -> list[Verdict]:
    print(report.section(f"fan-out medians over {plan.runs} runs ({plan.followers} followers)"))
    verdicts = []
    for shape, bound in (("broadcast", BROADCAST_P99_MS), ("spread", SPREAD_P99_MS)):
        runs = results[shape]
        p50 = report.median([o.p50_ms for o in runs])
        p99 = report.median([o.p99_ms for o in runs])
        gw = report.median([o.gateway_rss for o in runs]) / (1 << 20)
        reader = report.median([max(o.reader_rss) for o in runs]) / (1 << 20)
        lost = sum(o.lost for o in runs) + sum(o.duplicated for o in runs)
        connected = min(o.connected for o in runs)
        n = max(o.connected + o.failed for o in runs)
        print(
            f"{shape}: p50 {p50:.0f} ms, p99 {p99:.0f} ms (every run: "
            + ", ".join(f"{o.p99_ms:.0f}" for o in runs)
            + f"); gateway RSS {gw:.0f} MiB, reader RSS {reader:.0f} MiB; lost+dup {lost}; "
            f"connected at least {connected}/{n}"
        )
        verdicts += [
            report.below(f"{shape} {n} followers p99 < {bound:g} ms", p99, bound, "{:.0f} ms"),
            report.below(
                f"{shape} gateway RSS < {RSS_LIMIT_MIB:g} MiB", gw, RSS_LIMIT_MIB, "{:.0f} MiB"
            ),
            report.below(
                f"{shape} reader RSS < {RSS_LIMIT_MIB:g} MiB", reader, RSS_LIMIT_MIB, "{:.0f} MiB"
            ),
            report.holds(
                f"{shape}: {n} connected, nothing lost",
                connected == n and lost == 0,
                f"{connected} connected, {lost} lost or repeated",
            ),
        ]
    return verdicts


__all__ = ["Plan", "broadcast", "fan_cluster", "run", "spread"]
