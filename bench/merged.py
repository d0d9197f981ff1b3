"""The merged-stream section (`--only merged`): one app's stream merged over three agents.

Every part real and started here: three journald namespaces (one per agent), a node reader
on each (127.0.0.24-.26, trusting only the gateway's uid), the Mesos simulator (.27) naming
an app with one task per agent, and the gateway (.28). A writer process paces task lines
into the three journals at `rate` entries/s in all, each stamped with its send time and a
sequence number per agent; the client follows the app's merged SSE stream, as a user with
only that app's permission, from before the first line until every line arrived (or a
grace period passed).

Figures per run: end-to-end latency p50/p99 (send → client, journald's notification delay
and the reorder window included), lines lost and duplicated, and the gateway's CPU per
1,000 entries/s. Medians of `runs` runs are judged.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import secrets
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import httpx
import orjson

from app.devcluster.journald import JournaldNamespace
from app.devcluster.mesos import MesosSimulator, SimAgent, SimCluster, SimFramework, SimTask
from bench import report
from bench.cluster import add_user, grant_read, login, node_token, wait_resolved
from bench.fill import KeepAlive, NativeWriter
from bench.report import Verdict
from bench.servers import Server, ServerError, cpu_seconds, free_port, logway_gateway, node_reader

READER_HOSTS = ("127.0.0.24", "127.0.0.25", "127.0.0.26")
MESOS_HOST = "127.0.0.27"
GATEWAY_HOST = "127.0.0.28"
MASTER_ID = "b0e5c1a2-0000-4000-8000-0000000e4e6d"
MARATHON = f"{MASTER_ID}-0000"
APP = "/bench/merged"
GATEWAY_UID = "logway-gateway"  # GatewaySettings.service_uid
READER_UID = "bench-merged"  # may read the app's tasks, nothing else
JWKS_PATH = "/acs/api/v1/auth/jwks"
STREAM_PATH = f"/system/v1/logs/v1/app{APP}/stream/"
RUN_FIELD, SENT_FIELD, SEQ_FIELD = "BENCH_RUN", "BENCH_SENT_NS", "BENCH_SEQ"
TICK = 0.005  # the writer sends what is due every 5 ms
P99_TARGET_MS = 400.0
RATE = 10_000  # entries/s over the three agents
SECONDS = 10.0  # of writing, per run
READY_TIMEOUT = 60.0
_FILLER = "merged bench line, as long as a typical service log line, give or take a word"


@dataclass(frozen=True, slots=True)
class Plan:
    rate: int = RATE
    seconds: float = SECONDS
    runs: int = 3
    grace: float = 10.0  # after the writer stops, for the last lines to arrive


@dataclass(frozen=True, slots=True)
class Agent:
    id: str
    host: str
    container: str
    socket: Path


@dataclass(frozen=True, slots=True)
class MergedCluster:
    agents: tuple[Agent, ...]
    gateway: Server
    readers: tuple[Server, ...]
    token: str  # READER_UID's
    reader_tokens: tuple[str, ...]  # GATEWAY_UID's, addressed to each reader, in order


@dataclass(frozen=True, slots=True)
class RunResult:
    sent: int
    received: int
    lost: int
    duplicated: int  # or foreign: lines the writer never wrote
    malformed: int  # entries without the bench's fields (what they were is printed)
    p50_ms: float
    p99_ms: float
    gateway_cpu: float  # fraction of one core while the lines flowed
    rate: float  # entries/s the writer achieved

    @property
    def cpu_per_thousand(self) -> float:
        return self.gateway_cpu / (self.rate / 1000) if self.rate else float("nan")


def _sim_cluster(agents: tuple[Agent, ...]) -> SimCluster:
    cluster = SimCluster(master_id=MASTER_ID)
    cluster.agents = [SimAgent(a.id, a.host) for a in agents]
    cluster.frameworks = [SimFramework(MARATHON, "marathon", role="bench")]
    cluster.tasks = [
        SimTask(
            f"bench_merged.instance-{i}",
            "merged",
            MARATHON,
            a.id,
            executor_id=f"bench_merged.instance-{i}.exec",
            containers=(a.container,),
            labels={"DCOS_SPACE": APP},
        )
        for i, a in enumerate(agents)
    ]
    return cluster


@contextlib.contextmanager
def merged_cluster() -> Iterator[MergedCluster]:
    password = secrets.token_urlsafe(24)
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="logway-bench-merged-")))
        agents = []
        namespaces = []
        for i, host in enumerate(READER_HOSTS):
            ns = stack.enter_context(JournaldNamespace(f"benchmg{os.getpid()}x{i}"))
            stack.enter_context(KeepAlive(ns.runtime_dir / "stdout"))
            namespaces.append(ns)
            container = f"bench-merged-{i}-{uuid.uuid4()}"
            agents.append(Agent(f"{MASTER_ID}-S{i}", host, container, ns.socket))
        reader_port = free_port(READER_HOSTS[0])
        sim = stack.enter_context(
            MesosSimulator(_sim_cluster(tuple(agents)), masters=[(MESOS_HOST, 0)])
        )
        gw = stack.enter_context(
            logway_gateway(
                tmp / "gateway",
                host=GATEWAY_HOST,
                mesos=sim.urls[0],
                reader_port=reader_port,
                password=password,
            )
        )
        gw.start(JWKS_PATH)
        with httpx.Client(base_url=gw.base_url, timeout=30) as http:
            admin = login(http, "admin", password)
            add_user(http, admin, GATEWAY_UID)
            token = add_user(http, admin, READER_UID)
            grant_read(http, admin, f"dcos:mesos:agent:task:app_id:{APP}", READER_UID)
        auth = (f"--jwks-url={gw.base_url}{JWKS_PATH}", f"--allow-uid={GATEWAY_UID}")
        readers, reader_tokens = [], []
        for agent, ns in zip(agents, namespaces, strict=True):
            reader = stack.enter_context(
                node_reader(ns.name, host=agent.host, port=reader_port, auth=auth)
            )
            reader_token = node_token(tmp / "gateway", agent.host, reader_port)
            reader.start("/v1/fields/STREAM", headers={"Authorization": f"token={reader_token}"})
            readers.append(reader)
            reader_tokens.append(reader_token)
        _wait_planned(gw.base_url, token)
        print(
            f"Mesos simulator {sim.urls[0]} (app {APP}, one task on each of "
            f"{len(agents)} agents); gateway pid {gw.pid} at {gw.base_url}; node readers "
            + ", ".join(f"pid {r.pid} at {r.base_url}" for r in readers),
            flush=True,
        )
        yield MergedCluster(tuple(agents), gw, tuple(readers), token, tuple(reader_tokens))


def _wait_planned(base_url: str, token: str) -> None:
    """The gateway answers 503 until its first Mesos poll."""
    url = f"{base_url}/system/v1/logs/v1/app{APP}/range/?limit=1"
    wait_resolved(url, token, ok=(200, 204), timeout=READY_TIMEOUT, what="planned the app")


# The writer: a process of its own, so that the client's parsing does not pace it -------------


def _datagram(agent: Agent, run: str, seq: int) -> bytes:
    return (
        f"AGENT_ID={agent.id}\nFRAMEWORK_ID={MARATHON}\nEXECUTOR_ID={agent.container}.exec\n"
        f"CONTAINER_ID={agent.container}\nSYSLOG_IDENTIFIER=bench-merged\nSTREAM=STDOUT\n"
        f"{RUN_FIELD}={run}\n{SEQ_FIELD}={seq}\n{SENT_FIELD}={time.time_ns()}\n"
        f"MESSAGE=line {seq:07d} {_FILLER}\n"
    ).encode()


def _write(
    agents: tuple[Agent, ...], run: str, rate: int, seconds: float, done: Connection
) -> None:
    writers = [NativeWriter(a.socket) for a in agents]
    sent = [0] * len(agents)
    total = 0
    started = time.monotonic()
    try:
        while True:
            elapsed = time.monotonic() - started
            if elapsed >= seconds:
                break
            due = int(elapsed * rate) - total
            for _ in range(due):
                i = total % len(agents)
                writers[i].send(_datagram(agents[i], run, sent[i]))
                sent[i] += 1
                total += 1
            time.sleep(TICK)
    finally:
        for writer in writers:
            writer.close()
        done.send((sent, time.monotonic() - started))
        done.close()


# The client --------------------------------------------------------------------------------


async def _follow(
    url: str, token: str, run: str, received: list[tuple[str, int, float]], opened: asyncio.Event
) -> None:
    """Append (agent, seq, latency ms) per event until cancelled."""
    headers = {"Authorization": f"token={token}", "Accept": "text/event-stream"}
    params = {"filter": f"{RUN_FIELD}:{run}"}
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(30.0, read=None)) as client,
        client.stream("GET", url, headers=headers, params=params) as response,
    ):
        if response.status_code != 200:
            raise ServerError(f"merged stream answered {response.status_code}")
        opened.set()
        pending = b""
        async for chunk in response.aiter_raw():
            arrived = time.time_ns()
            events = (pending + chunk).split(b"\n\n")
            pending = events.pop()
            for event in events:
                cut = event.find(b"\ndata: ")
                if cut < 0:
                    continue
                fields = orjson.loads(event[cut + 7 :])["fields"]
                if SEQ_FIELD not in fields or SENT_FIELD not in fields:
                    print(f"an entry without the bench's fields: {event[:1000]!r}", flush=True)
                    received.append(("?", -1, float("nan")))
                    continue
                latency = (arrived - int(fields[SENT_FIELD])) / 1e6
                received.append((fields["AGENT_ID"], int(fields[SEQ_FIELD]), latency))


async def _followed(cluster: MergedCluster) -> None:
    """Every node reader serves the gateway's follow (so the first line is not missed)."""
    deadline = time.monotonic() + READY_TIMEOUT
    async with httpx.AsyncClient(timeout=10) as client:
        for reader, reader_token in zip(cluster.readers, cluster.reader_tokens, strict=True):
            headers = {"Authorization": f"token={reader_token}"}
            while True:
                text = (await client.get(f"{reader.base_url}/metrics", headers=headers)).text
                if "logway_node_followers 0" not in text:
                    break
                if time.monotonic() > deadline:
                    raise ServerError("the gateway never followed every node reader")
                await asyncio.sleep(0.05)


def _percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, round(p / 100 * (len(sorted_values) - 1)))]


async def _run(cluster: MergedCluster, plan: Plan, writing: int) -> RunResult:
    """One run: the stream opened, every reader followed, then `plan.rate` entries/s over
    the first `writing` agents (the others stay silent, so the window decides)."""
    run = uuid.uuid4().hex
    received: list[tuple[str, int, float]] = []
    opened = asyncio.Event()
    url = cluster.gateway.base_url + STREAM_PATH
    follower = asyncio.create_task(_follow(url, cluster.token, run, received, opened))
    agents = cluster.agents[:writing]
    try:
        await asyncio.wait_for(opened.wait(), READY_TIMEOUT)
        await _followed(cluster)
        mine, theirs = multiprocessing.Pipe(duplex=False)
        writer = multiprocessing.get_context("fork").Process(
            target=_write, args=(agents, run, plan.rate, plan.seconds, theirs)
        )
        cpu_before, wall_before = cpu_seconds(cluster.gateway.pid), time.monotonic()
        writer.start()
        theirs.close()
        while not mine.poll():
            await asyncio.sleep(0.05)
        sent, wrote_for = mine.recv()
        await asyncio.to_thread(writer.join)
        total = sum(sent)
        deadline = time.monotonic() + plan.grace
        while len(received) < total and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        cpu = cpu_seconds(cluster.gateway.pid) - cpu_before
        wall = time.monotonic() - wall_before
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
    counts = Counter((agent, seq) for agent, seq, _ in received)
    expected = {(a.id, n) for a, count in zip(agents, sent, strict=True) for n in range(count)}
    latencies = sorted(latency for agent, _, latency in received if agent != "?")
    return RunResult(
        sent=total,
        received=len(received),
        lost=len(expected - counts.keys()),
        duplicated=sum(n - 1 for n in counts.values() if n > 1)
        + len(counts.keys() - expected - {("?", -1)}),
        malformed=counts[("?", -1)],
        p50_ms=_percentile(latencies, 50),
        p99_ms=_percentile(latencies, 99),
        gateway_cpu=cpu / wall,
        rate=total / wrote_for,
    )


def _line(label: str, r: RunResult) -> str:
    return (
        f"{label}: sent {r.sent:,} at {r.rate:,.0f}/s, received {r.received:,}, lost {r.lost}, "
        f"duplicated {r.duplicated}, malformed {r.malformed}, latency p50 {r.p50_ms:.1f} ms "
        f"p99 {r.p99_ms:.1f} ms, gateway {r.gateway_cpu * 100:.1f}% of a core "
        f"({r.cpu_per_thousand * 100:.2f}% per 1,000 entries/s)"
    )


def run(plan: Plan) -> list[Verdict]:
    agents = len(READER_HOSTS)
    scenarios = {
        f"all {agents} agents writing": agents,
        f"{agents - 1} writing, 1 silent (the window decides)": agents - 1,
    }
    print(
        report.section(
            f"merged stream: app over {agents} agents, {plan.rate:,} entries/s, "
            f"{plan.seconds:g} s x {plan.runs} per scenario"
        ),
        flush=True,
    )
    results: dict[str, list[RunResult]] = {name: [] for name in scenarios}
    with merged_cluster() as cluster:
        for index in range(plan.runs):
            for name, writing in scenarios.items():
                result = asyncio.run(_run(cluster, plan, writing))
                results[name].append(result)
                print(_line(f"run {index + 1}, {name}", result), flush=True)
    header = ["scenario", "run", "sent", "rate", "lost", "dup", "p50 ms", "p99 ms", "gw CPU/1k/s"]
    rows = [
        [
            name,
            str(i + 1),
            f"{r.sent:,}",
            report.rate(r.rate),
            f"{r.lost}",
            f"{r.duplicated + r.malformed}",
            f"{r.p50_ms:.1f}",
            f"{r.p99_ms:.1f}",
            f"{r.cpu_per_thousand * 100:.2f}%",
        ]
        for name, runs in results.items()
        for i, r in enumerate(runs)
    ]
    print(report.table(header, rows, right=1))
    verdicts: list[Verdict] = []
    everything = [r for runs in results.values() for r in runs]
    for name, runs in results.items():
        p50 = report.median([r.p50_ms for r in runs])
        p99 = report.median([r.p99_ms for r in runs])
        print(f"medians, {name}: latency p50 {p50:.1f} ms, p99 {p99:.1f} ms")
        verdicts.append(
            report.below(
                f"merged stream p99 latency, {plan.rate:,}/s, {name} < {P99_TARGET_MS:.0f} ms",
                p99,
                P99_TARGET_MS,
                "{:.1f} ms",
            )
        )
        verdicts.append(Verdict(f"merged stream p50 latency, {name}", f"{p50:.1f} ms", "info"))
    lost = sum(r.lost for r in everything)
    duplicated = sum(r.duplicated + r.malformed for r in everything)
    cpu = report.median([r.cpu_per_thousand for r in results[next(iter(scenarios))]])
    print(
        f"gateway CPU {cpu * 100:.2f}% of a core per 1,000 entries/s (median, all writing); "
        f"lost {lost}, duplicated or malformed {duplicated} in {len(everything)} runs"
    )
    verdicts.append(
        report.holds(
            "merged stream: no entry lost or duplicated",
            lost == 0 and duplicated == 0,
            f"lost {lost}, duplicated {duplicated}",
        )
    )
    verdicts.append(
        Verdict(
            "merged stream: gateway CPU per 1,000 entries/s", f"{cpu * 100:.2f}% of a core", "info"
        )
    )
    return verdicts


__all__ = ["P99_TARGET_MS", "RATE", "SECONDS", "Plan", "RunResult", "merged_cluster", "run"]
