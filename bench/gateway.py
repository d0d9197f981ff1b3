"""The gateway section: the Logway gateway against nginx `proxy_pass` (Admin Router's shape)
in front of the same node reader, and against reading that node reader directly.

1. small ranges per second (the last 10 entries, JSON), many connections at once, and their
   latency under that load (p99 at 32 connections);
2. a whole 300k-entry range (JSON) in entries per second;
3. the latency the gateway adds to one small range, requests one at a time.

Every figure comes from this run, against peers started in it (`bench.cluster`); each target
is measured `runs` times, alternating which goes first, and the medians are judged.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Generic, TypeVar

from bench import report, throughput
from bench.cluster import AGENT_ID, Cluster, one_agent_cluster
from bench.load import Latencies, Load, Target, hammer, sequential
from bench.nginx import STATIC_PATH, WORKER_PROCESSES
from bench.report import Verdict
from bench.servers import cpu_seconds
from bench.throughput import Read

SMALL_QUERY = "/v1/range/?skip_prev=10"
SMALL_LINES = 10
JSON = "application/json"
AGENT_PREFIX = f"/system/v1/agent/{AGENT_ID}/logs"
# Issue 17's targets: 1 (small ranges, the whole range) and 4 (latency under load).
REQUESTS_RATIO = 0.8  # gateway / nginx proxy_pass, small ranges per second
RANGE_RATIO = 0.95  # gateway / direct, entries per second of the whole range
LOADED_P99_MS = 20.0  # gateway, small ranges, `Plan.connections` clients at once
# Their pace for that latency: a share of what nginx sustained in the same run. At saturation
# latency only restates throughput (every client queues), and nginx itself is far above 20 ms.
PACED_SHARE = 0.5
GATEWAY, NGINX, DIRECT = "logway gateway", "nginx proxy_pass", "node reader direct"
CEILING = "nginx static file"
CLIENT_HEADROOM = 3.0  # below this ceiling / fastest target, the client may be the limit
CPU_COLUMNS = ("gateway", "node", "nginx", "client")
LOAD_HEADER = [
    "target",
    "OK replies",
    "wall",
    "req/s",
    "p50",
    "p99",
    *(f"{p} ms" for p in CPU_COLUMNS),
]

LOAD_SECONDS = 5.0  # per load run, per target
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Plan:
    entries: int = 300_000
    runs: int = 3
    seconds: float = LOAD_SECONDS
    warmup: float = 1.0  # per target, before the runs
    connections: int = 32
    rounds: int = 1000  # sequential requests per target for latency


@dataclass(frozen=True, slots=True)
class Measured(Generic[T]):
    """A result and the CPU seconds each process spent while it was produced."""

    value: T
    cpu: Mapping[str, float]


def _measure(processes: Mapping[str, int], work: Callable[[], T]) -> Measured[T]:
    before = {name: cpu_seconds(pid) for name, pid in processes.items()}
    client = time.process_time()
    value = work()
    cpu = {name: cpu_seconds(pid) - before[name] for name, pid in processes.items()}
    return Measured(value, {**cpu, "client": time.process_time() - client})


def _processes(c: Cluster) -> dict[str, int]:
    return {"gateway": c.gateway.pid, "node": c.node.pid, "nginx": c.nginx.pid}


def _small_targets(c: Cluster) -> dict[str, Target]:
    user = (("Accept", JSON), ("Authorization", f"token={c.user_token}"))
    service = (("Accept", JSON), ("Authorization", f"token={c.service_token}"))
    through = AGENT_PREFIX + SMALL_QUERY
    return {
        GATEWAY: Target(c.gateway.host, c.gateway.port, through, user, SMALL_LINES),
        # The caller's token goes to nginx too: it replaces it with the gateway's.
        NGINX: Target(c.nginx.host, c.nginx.port, through, user, SMALL_LINES),
        DIRECT: Target(c.node.host, c.node.port, SMALL_QUERY, service, SMALL_LINES),
    }


def _ratio(name: str, top: float, bottom: float, bound: float) -> Verdict:
    if bottom <= 0:
        return Verdict(name, "no OK replies to compare with", report.SHORT)
    return report.at_least(name, top / bottom, bound, "{:.2f}x")


def _per_run(tops: list[float], bottoms: list[float]) -> str:
    pairs = zip(tops, bottoms, strict=True)
    return ", ".join(f"{a / b:.2f}x" if b > 0 else "-" for a, b in pairs)


def _alternating(labels: list[str], run: int) -> list[str]:
    return labels if run % 2 == 0 else labels[::-1]


# 1. small ranges per second ----------------------------------------------------------------


def _load_row(label: str, m: Measured[Load]) -> list[str]:
    load = m.value
    per_request = [f"{_cpu_per_reply(m, p):.3f}" if load.ok else "-" for p in CPU_COLUMNS]
    latency = [f"{load.percentile(p):.2f} ms" for p in (50, 99)]
    return [
        label,
        f"{load.ok:,}",
        f"{load.seconds:.2f} s",
        report.rate(load.rate),
        *latency,
        *per_request,
    ]


def _cpu_per_reply(m: Measured[Load], process: str) -> float:
    """Milliseconds of `process`'s CPU per OK reply."""
    return m.cpu[process] / m.value.ok * 1e3 if m.value.ok else float("nan")


def requests_per_second(c: Cluster, plan: Plan) -> tuple[list[Verdict], int]:
    targets = _small_targets(c)
    print(
        report.section(
            f"gateway: small ranges ({SMALL_QUERY}, JSON), {plan.connections} connections"
        ),
        flush=True,
    )
    print(
        f"workers: logway gateway 1 uvicorn process; node reader 1 uvicorn process; nginx "
        f"worker_processes {WORKER_PROCESSES}; load client 1 process (uvloop + httptools), "
        f"the same for every target; {plan.seconds:g} s per run, {plan.runs} runs"
    )
    print(
        "caveat: nginx validates no token and asks no one (Admin Router's Lua would verify "
        "the JWT and query the IAM per request): the comparison favours nginx"
    )
    print(
        "p50/p99: each OK reply's latency under this load; CPU columns: milliseconds of each "
        "process's CPU per OK reply"
    )
    processes = _processes(c)
    ceiling_target = Target(c.nginx.host, c.nginx.port, STATIC_PATH, lines=SMALL_LINES)
    ceiling = _measure(
        processes,
        partial(hammer, ceiling_target, connections=plan.connections, seconds=plan.seconds),
    )
    print(report.table(LOAD_HEADER, [_load_row(f"{CEILING} (client ceiling)", ceiling)]))
    for target in targets.values():
        hammer(target, connections=plan.connections, seconds=plan.warmup)

    results: dict[str, list[Measured[Load]]] = {label: [] for label in targets}
    for n in range(plan.runs):
        rows = []
        for label in _alternating(list(targets), n):
            work = partial(
                hammer, targets[label], connections=plan.connections, seconds=plan.seconds
            )
            m = _measure(processes, work)
            results[label].append(m)
            rows.append(_load_row(label, m))
        print(f"\nrun {n + 1}/{plan.runs}")
        print(report.table(LOAD_HEADER, rows))

    rates = _print_medians(results)
    # nginx checks no token: the name says so wherever the verdict is printed.
    name = f"gateway / nginx proxy_pass (no auth), small ranges/s >= {REQUESTS_RATIO:g}x"
    verdict = _ratio(name, rates[GATEWAY], rates[NGINX], REQUESTS_RATIO)
    per_run = _per_run(*([m.value.rate for m in results[k]] for k in (GATEWAY, NGINX)))
    print(f"\n{name}  {verdict.measured}  {verdict.outcome}  runs: {per_run}")
    _saturated_latency(results)
    _print_cpu(results)
    fastest = max(rates.values())
    headroom = ceiling.value.rate / fastest if fastest > 0 else float("inf")
    print(
        f"the load client's ceiling is {headroom:,.0f}x the fastest target"
        + ("" if headroom >= CLIENT_HEADROOM else ": THE CLIENT MAY LIMIT THESE FIGURES")
    )
    print(
        f"for scale, against the node reader direct: gateway "
        f"{_per_run([rates[GATEWAY]], [rates[DIRECT]])}, "
        f"nginx {_per_run([rates[NGINX]], [rates[DIRECT]])}"
    )
    failed = sum(m.value.failed for runs in results.values() for m in runs)
    paced, paced_failed = paced_latency(c, plan, rates[NGINX])
    return [verdict, paced], failed + paced_failed


def _saturated_latency(results: dict[str, list[Measured[Load]]]) -> None:
    """At saturation every client waits its turn: latency is connections / throughput (Little's
    law), so these p99s restate the rates; `paced_latency` is the latency target's reading."""
    p99 = {
        label: report.median([m.value.percentile(99) for m in runs])
        for label, runs in results.items()
    }
    print(
        "p99 at saturation (medians; = clients / throughput, Little's law): "
        + ", ".join(f"{label} {p99[label]:.2f} ms" for label in results)
    )


def paced_latency(c: Cluster, plan: Plan, nginx_rate: float) -> tuple[Verdict, int]:
    """Target 4: `plan.connections` clients at once, sending together at PACED_SHARE of the
    small-range rate nginx sustained, through the gateway and through nginx; p99 of each run
    (from each request's due time), medians judged."""
    rate = max(1.0, nginx_rate * PACED_SHARE)
    targets = _small_targets(c)
    labels = [GATEWAY, NGINX]
    p99s: dict[str, list[float]] = {label: [] for label in labels}
    failed = 0
    for n in range(plan.runs):
        for label in _alternating(labels, n):
            load = hammer(
                targets[label], connections=plan.connections, seconds=plan.seconds, rate=rate
            )
            p99s[label].append(load.percentile(99))
            failed += load.failed
    name = f"gateway p99, small ranges, {plan.connections} clients at once < {LOADED_P99_MS:g} ms"
    p99 = {label: report.median(values) for label, values in p99s.items()}
    verdict = report.below(name, p99[GATEWAY], LOADED_P99_MS, "{:.2f} ms")
    every = ", ".join(f"{v:.2f}" for v in p99s[GATEWAY])
    print(
        f"\n{plan.connections} clients at once paced at {rate:,.0f} req/s in all "
        f"({PACED_SHARE:.0%} of nginx's rate above)\n{name}  {verdict.measured}  "
        f"{verdict.outcome}  runs: {every} ms; nginx p99 {p99[NGINX]:.2f} ms"
    )
    return verdict, failed


def _print_cpu(results: dict[str, list[Measured[Load]]]) -> None:
    """What each proxy costs per reply, beside what the node reader behind it costs."""

    def cpu(label: str, process: str) -> float:
        return report.median([_cpu_per_reply(m, process) for m in results[label]])

    print(
        f"CPU per OK reply (medians): gateway {cpu(GATEWAY, 'gateway'):.3f} ms "
        f"(node reader behind it {cpu(GATEWAY, 'node'):.3f} ms); nginx "
        f"{cpu(NGINX, 'nginx'):.3f} ms (node reader behind it {cpu(NGINX, 'node'):.3f} ms)"
    )


def _print_medians(results: dict[str, list[Measured[Load]]]) -> dict[str, float]:
    for label, runs in results.items():
        problems = "; ".join(m.value.problems for m in runs if m.value.failed)
        if problems:
            print(f"{label}: replies not OK: {problems}")
    rates = {label: report.median([m.value.rate for m in runs]) for label, runs in results.items()}
    rows = [
        [label, report.rate(rates[label]), ", ".join(f"{m.value.rate:,.0f}" for m in runs)]
        for label, runs in results.items()
    ]
    print("\n" + report.table(["target", "median req/s", "every run"], rows))
    return rates


# 2. the whole range ----------------------------------------------------------------------


def full_range(c: Cluster, plan: Plan) -> tuple[list[Verdict], int]:
    print(report.section(f"gateway: full range of {plan.entries:,} entries (JSON), curl"))
    readers = {
        GATEWAY: throughput.curl(
            GATEWAY,
            f"{c.gateway.base_url}{AGENT_PREFIX}/v1/range/",
            JSON,
            header_file=c.directory / "user.headers",
        ),
        DIRECT: throughput.curl(
            DIRECT,
            f"{c.node.base_url}/v1/range/",
            JSON,
            header_file=c.directory / "service.headers",
        ),
    }
    processes = {"gateway": c.gateway.pid, "node": c.node.pid}
    results: dict[str, list[Measured[Read]]] = {label: [] for label in readers}
    rows = []
    for n in range(plan.runs):
        for label in _alternating(list(readers), n):
            m = _measure(processes, partial(throughput.run, readers[label]))
            results[label].append(m)
            read = m.value
            rows.append(
                [
                    f"run {n + 1}",
                    label,
                    f"{read.entries:,}",
                    report.mib(read.size),
                    f"{read.seconds:.2f} s",
                    report.rate(read.rate),
                    f"{m.cpu['gateway']:.2f} s",
                    f"{m.cpu['node']:.2f} s",
                ]
            )
    header = ["run", "reader", "entries", "bytes", "wall", "entries/s", "gateway CPU", "node CPU"]
    print(report.table(header, rows, right=2))
    # journald adds lines of its own to a new namespace: the direct read is the reference.
    expected = results[DIRECT][0].value.entries
    short = sum(m.value.entries != expected for runs in results.values() for m in runs)
    if expected < plan.entries:
        print(
            f"the direct read returned {expected:,} entries, "
            f"fewer than the {plan.entries:,} written!"
        )
        short += 1
    if short:
        print(f"{short} reads did not return the {expected:,} entries the first direct read did!")
    rates = {label: report.median([m.value.rate for m in runs]) for label, runs in results.items()}
    name = f"gateway / direct, {plan.entries:,}-entry range >= {RANGE_RATIO:g}x"
    verdict = _ratio(name, rates[GATEWAY], rates[DIRECT], RANGE_RATIO)
    per_run = _per_run(*([m.value.rate for m in results[k]] for k in (GATEWAY, DIRECT)))
    print(
        f"medians: gateway {report.rate(rates[GATEWAY])}, direct {report.rate(rates[DIRECT])}\n"
        f"{name}  {verdict.measured}  {verdict.outcome}  runs: {per_run}"
    )
    return [verdict], short


# 3. added latency ------------------------------------------------------------------------


def added_latency(c: Cluster, plan: Plan) -> tuple[list[Verdict], int]:
    print(
        report.section(
            f"gateway: added latency, small range, one request at a time ({plan.rounds} each)"
        ),
        flush=True,
    )
    targets = _small_targets(c)
    labels = [DIRECT, GATEWAY, NGINX]
    lat: Latencies = sequential([targets[label] for label in labels], rounds=plan.rounds)
    rows = []
    for i, label in enumerate(labels):
        figures = [f"{lat.percentile(i, p):.2f} ms" for p in (50, 90, 99, 100)]
        rows.append([label, f"{len(lat.millis[i]):,}", *figures])
    print(report.table(["target", "OK", "p50", "p90", "p99", "max"], rows))
    if lat.failed != "none":
        print(f"replies not OK: {lat.failed}")

    def added(i: int, p: float) -> float:
        return lat.percentile(i, p) - lat.percentile(0, p)

    print(
        f"added to direct: gateway p50 {added(1, 50):+.2f} ms, p99 {added(1, 99):+.2f} ms; "
        f"nginx p50 {added(2, 50):+.2f} ms, p99 {added(2, 99):+.2f} ms"
    )
    verdicts = [
        Verdict("gateway added latency p50 (small range)", f"{added(1, 50):.2f} ms", "no target"),
        Verdict("gateway added latency p99 (small range)", f"{added(1, 99):.2f} ms", "no target"),
    ]
    failures = sum(plan.rounds - len(m) for m in lat.millis)
    return verdicts, failures


def run(plan: Plan) -> list[Verdict]:
    print(report.section("gateway: setting up a one-agent cluster"), flush=True)
    with one_agent_cluster(plan.entries, SMALL_QUERY) as c:
        verdicts, failures = requests_per_second(c, plan)
        more, short_reads = full_range(c, plan)
        verdicts += more
        more, slow_failures = added_latency(c, plan)
        verdicts += more
    bad = failures + short_reads + slow_failures
    verdicts.append(
        report.holds("gateway section: every reply OK and complete", bad == 0, f"{bad} not OK")
    )
    return verdicts
