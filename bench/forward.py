"""The forward section (`--only forward`): `logway forward` from a node's journal into Redis
through the gateway, against `journalctl -o json | redis-cli --pipe` on the same journal.

Every part real and started here: `bench.cluster.gateway_and_node` (one journald namespace
filled with `entries` task lines, its node reader on 127.0.0.108, the Mesos simulator and the
gateway on 127.0.0.109), and `redis-server` (127.0.0.108). The forwarder reads as a user
granted the system logs.

1. Throughput: a fresh state file each run; entries/s from the first entry in Redis to the
   last (the process start, ~1-4 s of imports on a loaded machine, is shown apart), against
   the pipe: `journalctl --namespace NS -o json`, each line made an RPUSH in Redis's wire
   protocol by `awk`, into `redis-cli --pipe`.
2. Lag: a writer paces lines at `rate` entries/s, each stamped with its send time, while
   the forwarder follows; a consumer pops the list as it fills: p50/p99 from send to Redis
   (journald's notification, gateway, forwarder batching and fsync included).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import resource
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import orjson

from app.devcluster.commands import logway_argv
from app.devcluster.journald import JournaldNamespace
from bench import report
from bench.cluster import AGENT_ID, Hosts, gateway_and_node, wait_resolved
from bench.fill import NativeWriter
from bench.report import Verdict
from bench.servers import ServerError, cpu_seconds, free_port

NODE_HOST = "127.0.0.108"
GATEWAY_HOST = "127.0.0.109"
READER_UID = "bench-forward"
RUN_FIELD, SENT_FIELD = "BENCH_RUN", "BENCH_SENT_NS"
RATE_TARGET = 30_000.0
RATIO_TARGET = 1.0
LAG_P99_TARGET_S = 1.0
LAG_RATE = 5_000
LAG_SECONDS = 10.0
TICK = 0.005
TIMEOUT = 300.0
BATCH = 1000


@dataclass(frozen=True, slots=True)
class Plan:
    entries: int = 300_000
    runs: int = 3
    rate: int = LAG_RATE
    seconds: float = LAG_SECONDS


@dataclass(frozen=True, slots=True)
class Env:
    namespace: JournaldNamespace
    gateway: str
    token: str
    redis_port: int
    tmp: Path
    gateway_pid: int
    node_pid: int


@contextlib.contextmanager
def _redis(host: str) -> Iterator[int]:
    port = free_port(host)
    argv = ["redis-server", "--bind", host, "--port", str(port), "--save", "", "--appendonly"]
    proc = subprocess.Popen([*argv, "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while _redis_cli(port, "PING").strip() != "PONG":
            if time.monotonic() > deadline or proc.poll() is not None:
                raise ServerError("redis-server did not start")
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def _redis_cli(port: int, *command: str) -> str:
    return subprocess.run(
        ["redis-cli", "-h", NODE_HOST, "-p", str(port), *command],
        capture_output=True,
        text=True,
        check=False,
    ).stdout


def _llen(port: int, key: str) -> int:
    out = _redis_cli(port, "LLEN", key).strip()
    return int(out) if out.isdigit() else 0


@contextlib.contextmanager
def _cluster(entries: int) -> Iterator[Env]:
    hosts = Hosts(mesos=GATEWAY_HOST, gateway=GATEWAY_HOST, node=NODE_HOST)
    with contextlib.ExitStack() as stack:
        core = stack.enter_context(
            gateway_and_node(entries, hosts=hosts, reader_uid=READER_UID, prefix="benchfw")
        )
        base = core.gateway.base_url
        wait_resolved(f"{base}/system/v1/agent/{AGENT_ID}/logs/v1/range/?limit=1", core.user_token)
        port = stack.enter_context(_redis(NODE_HOST))
        yield Env(
            core.namespace,
            base,
            core.user_token,
            port,
            core.directory,
            core.gateway.pid,
            core.node.pid,
        )


def _forwarder(env: Env, key: str, state: Path, *extra: str) -> subprocess.Popen[bytes]:
    url = f"redis://{NODE_HOST}:{env.redis_port}/0?key={key}"
    argv = logway_argv(
        "forward", "agent", AGENT_ID, "--to", url, "--state", str(state),
        "--batch", str(BATCH), f"--url={env.gateway}", *extra,
    )  # fmt: skip
    environ = {**os.environ, "LOGWAY_TOKEN": env.token, "XDG_CONFIG_HOME": str(env.tmp)}
    log = (env.tmp / f"{key}.log").open("ab")
    return subprocess.Popen(argv, stdout=log, stderr=log, env=environ)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass(frozen=True, slots=True)
class Throughput:
    rate: float  # entries/s, first entry in Redis to the last
    startup: float  # process start to the first entry
    wall: float
    # CPU µs per entry of the forwarder, the gateway and the node reader: on a shared,
    # loaded machine the wall-clock rate says more about the neighbours than about us.
    cpu_us: tuple[float, float, float]


def _forward_run(env: Env, entries: int) -> Throughput:
    key = f"fw-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    cpu_before = (cpu_seconds(env.gateway_pid), cpu_seconds(env.node_pid))
    proc = _forwarder(env, key, env.tmp / f"{key}.json")
    first = None
    cpu = (0.0, 0.0, 0.0)
    try:
        while True:
            n = _llen(env.redis_port, key)
            now = time.monotonic()
            if n and first is None:
                first = (now, n)
            if n >= entries:
                cpu = (
                    cpu_seconds(proc.pid),
                    cpu_seconds(env.gateway_pid) - cpu_before[0],
                    cpu_seconds(env.node_pid) - cpu_before[1],
                )
                break
            if now - started > TIMEOUT or proc.poll() is not None:
                raise ServerError(f"the forwarder stopped at {n:,} entries (see {key}.log)")
            time.sleep(0.05)
    finally:
        _stop(proc)
        _redis_cli(env.redis_port, "DEL", key)
    assert first is not None
    done = time.monotonic()
    rate = (entries - first[1]) / (done - first[0]) if done > first[0] else float("inf")
    per_entry = tuple(1e6 * c / entries for c in cpu)
    return Throughput(rate, first[0] - started, done - started, per_entry)  # type: ignore[arg-type]


def _pipe_run(env: Env, entries: int) -> tuple[float, float]:
    """(entries/s, CPU µs per entry of journalctl + awk + redis-cli)."""
    key = f"pipe-{uuid.uuid4().hex[:8]}"
    awk = (
        'BEGIN { k = "' + key + '" } '
        '{ printf "*3\\r\\n$5\\r\\nRPUSH\\r\\n$%d\\r\\n%s\\r\\n$%d\\r\\n%s\\r\\n", '
        "length(k), k, length($0), $0 }"
    )
    script = (
        f"journalctl --namespace={env.namespace.name} -o json | LC_ALL=C awk '{awk}' "
        f"| redis-cli -h {NODE_HOST} -p {env.redis_port} --pipe > /dev/null"
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    subprocess.run(["bash", "-o", "pipefail", "-c", script], check=True)
    seconds = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    n = _llen(env.redis_port, key)
    _redis_cli(env.redis_port, "DEL", key)
    if n < entries:
        raise ServerError(f"the pipe delivered {n:,} of {entries:,}")
    return n / seconds, 1e6 * cpu / n


# Lag at a sustained rate --------------------------------------------------------------------


def _write(socket: Path, run: str, rate: int, seconds: float, done: Connection) -> None:
    total = 0
    started = time.monotonic()
    with NativeWriter(socket) as writer:
        while (elapsed := time.monotonic() - started) < seconds:
            for _ in range(int(elapsed * rate) - total):
                writer.send(
                    f"MESSAGE=forward lag line {total}\nSYSLOG_IDENTIFIER=bench-forward\n"
                    f"{RUN_FIELD}={run}\n{SENT_FIELD}={time.time_ns()}\n".encode()
                )
                total += 1
            time.sleep(TICK)
    done.send(total)
    done.close()


def _consume(port: int, key: str, lags: list[float], stop: threading.Event) -> None:
    import redis

    client = redis.Redis(host=NODE_HOST, port=port)
    try:
        while not stop.is_set():
            items = client.lpop(key, 1000)
            now = time.time_ns()
            if not items:
                time.sleep(0.001)
                continue
            for raw in items:
                sent = int(orjson.loads(raw)["fields"][SENT_FIELD])
                lags.append((now - sent) / 1e9)
    finally:
        client.close()


def _lag_run(env: Env, plan: Plan) -> tuple[float, float, int, int]:
    run = uuid.uuid4().hex
    key = f"lag-{run[:8]}"
    state = env.tmp / f"{key}.json"
    proc = _forwarder(env, key, state, "--filter", f"{RUN_FIELD}:{run}", "--since", "1s")
    lags: list[float] = []
    stop = threading.Event()
    consumer = threading.Thread(target=_consume, args=(env.redis_port, key, lags, stop))
    consumer.start()
    try:
        time.sleep(5.0)  # the forwarder is up and following (imports take seconds here)
        ours, theirs = multiprocessing.Pipe(duplex=False)
        writer = multiprocessing.Process(
            target=_write, args=(env.namespace.socket, run, plan.rate, plan.seconds, theirs)
        )
        writer.start()
        written: int = ours.recv()
        writer.join()
        deadline = time.monotonic() + 30
        while len(lags) < written and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        consumer.join()
        _stop(proc)
    ordered = sorted(lags)
    if not ordered:
        raise ServerError("no entry arrived")
    p50 = ordered[len(ordered) // 2]
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return p50, p99, written, len(lags)


def run(plan: Plan) -> list[Verdict]:
    print(report.section("forward: node journal -> gateway -> logway forward -> Redis"))
    with _cluster(plan.entries) as env:
        rows = []
        forwards: list[float] = []
        pipes: list[float] = []
        pipe_cpus: list[float] = []
        cpus: list[tuple[float, float, float]] = []
        for n in range(1, plan.runs + 1):
            fw = _forward_run(env, plan.entries)
            pipe, pipe_cpu = _pipe_run(env, plan.entries)
            forwards.append(fw.rate)
            pipes.append(pipe)
            pipe_cpus.append(pipe_cpu)
            cpus.append(fw.cpu_us)
            rows.append(
                [
                    str(n),
                    report.rate(fw.rate),
                    f"{fw.startup:.1f} s",
                    f"{fw.wall:.1f} s",
                    " / ".join(f"{c:.0f}" for c in fw.cpu_us),
                    report.rate(pipe),
                    f"{pipe_cpu:.0f}",
                ]
            )
        header = [
            "run",
            "forward entries/s",
            "start-up",
            "wall",
            "CPU us/entry fwd / gw / node",
            "journalctl|redis-cli /s",
            "pipe CPU us/entry",
        ]
        print(report.table(header, rows), flush=True)
        lag_rows = []
        p99s: list[float] = []
        for n in range(1, plan.runs + 1):
            p50, p99, written, arrived = _lag_run(env, plan)
            p99s.append(p99)
            lag_rows.append([str(n), f"{written:,}", f"{arrived:,}", f"{p50:.3f}", f"{p99:.3f}"])
        print(report.section(f"forward lag at {plan.rate:,} entries/s for {plan.seconds:g} s"))
        print(report.table(["run", "written", "arrived", "p50 s", "p99 s"], lag_rows))
    fw_median, pipe_median = report.median(forwards), report.median(pipes)
    fwd_cpu, gw_cpu, node_cpu = (report.median([c[i] for c in cpus]) for i in range(3))
    print(
        f"CPU per entry (medians): forwarder {fwd_cpu:.0f} us, gateway {gw_cpu:.0f} us, "
        f"node reader {node_cpu:.0f} us: one core each would carry "
        f"{1e6 / max(fwd_cpu, gw_cpu, node_cpu):,.0f} entries/s, two cores at most "
        f"{2e6 / (fwd_cpu + gw_cpu + node_cpu):,.0f}; the pipe "
        f"{report.median(pipe_cpus):.0f} us (journalctl + awk + redis-cli)",
        flush=True,
    )
    ratio = fw_median / pipe_median
    print(
        f"medians: forward {fw_median:,.0f}/s, pipe {pipe_median:,.0f}/s, "
        f"ratio {ratio:.2f}x; lag p99 {report.median(p99s):.3f} s",
        flush=True,
    )
    return [
        report.at_least(
            f"forward into Redis >= {RATE_TARGET:,.0f} entries/s",
            fw_median,
            RATE_TARGET,
            "{:,.0f}/s",
        ),
        report.at_least(
            f"forward / journalctl|redis-cli >= {RATIO_TARGET:g}x", ratio, RATIO_TARGET, "{:.2f}x"
        ),
        report.below(
            f"forward lag p99 at {plan.rate:,}/s < {LAG_P99_TARGET_S:g} s",
            report.median(p99s),
            LAG_P99_TARGET_S,
            "{:.3f} s",
        ),
    ]
