"""The benchmark's sections: each measures, prints its figures and returns its verdicts."""

from __future__ import annotations

import asyncio
import dataclasses
import resource

from app.devcluster.journald import JournaldNamespace
from app.journal.pool import MAX_IDLE_HANDLES
from bench import fanout, follow, report, throughput
from bench.report import Verdict
from bench.servers import Server, cpu_seconds
from bench.throughput import SSE_EVENT_END, Read, Reader

NODE_JSON, NODE_TEXT, NODE_SSE = "node NDJSON", "node text", "node SSE"
JCTL_JSON, JCTL_TEXT = "journalctl -o json", "journalctl -o short"
GW_JSON, GW_TEXT = "gatewayd JSON", "gatewayd text"
# (numerator, denominator, minimum ratio)
RATIO_TARGETS = (
    (NODE_JSON, GW_JSON, 6.0),
    (NODE_JSON, JCTL_JSON, 3.0),
    (NODE_TEXT, GW_TEXT, 3.0),
)
LATENCY_PROBES = 2000
LATENCY_P99_MS = 50.0
FANOUT_WRITES = 100
RSS_LIMIT_MIB = 300.0


def readers(node: Server, gw: Server | None, namespace: str) -> list[Reader]:
    """The node's three formats, then the peers' unless `gw` is None (--skip-peers)."""
    url = f"{node.base_url}/v1/range/"
    out = [
        throughput.curl(NODE_JSON, url, "application/json"),
        throughput.curl(NODE_TEXT, url, "text/plain"),
        throughput.curl(NODE_SSE, url, "text/event-stream", SSE_EVENT_END),
    ]
    if gw is not None:
        out += [
            throughput.journalctl(JCTL_JSON, namespace, "json"),
            throughput.journalctl(JCTL_TEXT, namespace, "short"),
            throughput.curl(GW_JSON, f"{gw.base_url}/entries", "application/json"),
            throughput.curl(GW_TEXT, f"{gw.base_url}/entries", "text/plain"),
        ]
    return out


def server_pids(node: Server, gw: Server | None) -> dict[str, int]:
    """Whose CPU a read costs, by reader label (journalctl is the reader's own child)."""
    pids = {NODE_JSON: node.pid, NODE_TEXT: node.pid, NODE_SSE: node.pid}
    if gw is not None:
        pids |= {GW_JSON: gw.pid, GW_TEXT: gw.pid}
    return pids


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_reads(
    suite: list[Reader], runs: int, pids: dict[str, int] | None = None
) -> dict[str, list[Read]]:
    """`pids`: the server process of each HTTP reader, whose CPU the read is charged;
    a reader without one (journalctl) is charged its own CPU."""
    pids = pids or {}
    results: dict[str, list[Read]] = {r.label: [] for r in suite}
    for n in range(1, runs + 1):
        print(report.section(f"full range reads, run {n}/{runs}"), flush=True)
        rows = []
        for reader in suite:
            pid = pids.get(reader.label)
            before = cpu_seconds(pid) if pid else _children_cpu()
            read = throughput.run(reader)
            cpu = (cpu_seconds(pid) if pid else _children_cpu()) - before
            read = dataclasses.replace(read, cpu=cpu)
            results[reader.label].append(read)
            size, wall = report.mib(read.size), f"{read.seconds:.2f} s"
            figures = [f"{read.entries:,}", size, wall, report.rate(read.rate)]
            rows.append([reader.label, *figures, f"{cpu:.2f} s", report.rate(read.per_cpu)])
        header = ["reader", "entries", "bytes", "wall", "entries/s", "server cpu", "per cpu-s"]
        print(report.table(header, rows), flush=True)
    return results


def medians(results: dict[str, list[Read]]) -> dict[str, float]:
    print(report.section("medians over runs"))
    out = {label: report.median([r.rate for r in reads]) for label, reads in results.items()}
    expected = results[NODE_JSON][0].entries
    rows = []
    for label, reads in results.items():
        runs = ", ".join(f"{r.rate:,.0f}" for r in reads)
        if any(r.entries != expected for r in reads):
            runs += f"  (count differs from {expected:,}!)"
        rows.append([label, report.rate(out[label]), runs])
    print(report.table(["reader", "median", "every run (entries/s)"], rows))
    return out


def ratios(results: dict[str, list[Read]], rates: dict[str, float]) -> list[Verdict]:
    print(report.section("ratios (median rate / median rate)"))
    verdicts = []
    for top, bottom, bound in RATIO_TARGETS:
        name = f"{top} / {bottom} >= {bound:g}x"
        if bottom not in rates:
            print(f"{name:<44}  skipped (--skip-peers)")
            verdicts.append(report.at_least(name, None, bound, ""))
            continue
        verdict = report.at_least(name, rates[top] / rates[bottom], bound, "{:.2f}x")
        pairs = list(zip(results[top], results[bottom], strict=True))
        per_run = ", ".join(f"{a.rate / b.rate:.2f}x" for a, b in pairs)
        print(f"{name:<44} {verdict.measured:>6}  {verdict.outcome:<10}  runs: {per_run}")
        top_cpu = report.median([a.per_cpu for a, _ in pairs])
        bottom_cpu = report.median([b.per_cpu for _, b in pairs])
        if top_cpu > 0 and bottom_cpu > 0:
            # The same ratio per CPU second of each server: a shared machine moves it less.
            print(f"{'  per CPU second of each server':<44} {top_cpu / bottom_cpu:>5.2f}x")
        verdicts.append(verdict)
    return verdicts


def latency(node: Server, ns: JournaldNamespace) -> Verdict:
    print(report.section(f"follow latency: {LATENCY_PROBES} entries, 2-5 ms apart"), flush=True)
    result = asyncio.run(follow.measure(node.base_url, ns.socket, LATENCY_PROBES))
    p50, p90, p99 = (result.percentile(p) for p in (50, 90, 99))
    worst = result.millis[-1] if result.millis else float("nan")
    print(
        f"one SSE follower on /v1/stream/?filter=BENCH:latency: received {result.received}/"
        f"{result.sent}"
    )
    print(
        f"arrival - send: p50 {p50:.1f} ms  p90 {p90:.1f} ms  p99 {p99:.1f} ms  max {worst:.1f} ms"
    )
    name = f"follow latency p99 < {LATENCY_P99_MS:g} ms"
    verdict = report.below(name, p99, LATENCY_P99_MS, "{:.1f} ms")
    if result.received < result.sent:
        lost = f"{verdict.measured}, lost {result.sent - result.received}"
        return Verdict(name, lost, report.SHORT)
    return verdict


def _sample_row(label: str, s: fanout.NodeSample) -> list[str]:
    figures = [s.followers, s.handles, s.fd_handles, s.journal_fds]
    memory = [s.rss, s.rss_anon, s.rss - s.rss_anon, s.peak_rss]
    return [label, *map(str, figures), *map(report.mib, memory)]


def _print_fanout(r: fanout.FanOut) -> None:
    print(
        f"connected {r.connected}/{r.requested} ({r.failed} failed); /metrics showed them "
        f"all after {r.reach_seconds:.1f} s; at most {r.ramp_peak_handles} journal handles "
        "while connecting"
    )
    expected = r.sent * r.connected
    print(
        f"wrote {r.sent} entries: {r.complete}/{r.connected} followers got all of them "
        f"({r.deliveries:,}/{expected:,} deliveries) in {r.deliver_seconds:.2f} s"
    )
    print(f"closed them: followers at 0 after {r.close_seconds:.1f} s")
    print(
        f"handles = logway_node_journal_handles (1 live tail + pooled idle, pool cap "
        f"{MAX_IDLE_HANDLES}); /proc handles = most fds on one of the {r.journal_files} "
        "journal files"
    )
    rows = [
        _sample_row("before", r.baseline),
        _sample_row("attached", r.attached),
        _sample_row("after writes", r.delivered),
        _sample_row("closed", r.closed),
    ]
    header = ["node", "followers", "handles", "/proc handles", "journal fds"]
    header += ["VmRSS", "RssAnon", "file+shm", "VmHWM"]
    print(report.table(header, rows))


def followers(node: Server, ns: JournaldNamespace, count: int) -> list[Verdict]:
    print(report.section(f"{count} concurrent followers on /v1/stream/?skip_prev=1"), flush=True)
    measure = fanout.measure(
        host=node.host,
        port=node.port,
        pid=node.pid,
        journal=ns.directory,
        socket_path=ns.socket,
        count=count,
        writes=FANOUT_WRITES,
    )
    r = asyncio.run(measure)
    _print_fanout(r)
    return _fanout_verdicts(r)


def _fanout_verdicts(r: fanout.FanOut) -> list[Verdict]:
    with_followers = (r.attached, r.delivered)
    rss = max(s.rss for s in with_followers) / (1 << 20)
    # Judged once every follower is past its catch-up read (which leases a pooled handle
    # for a moment): then the metric is the live tail plus idle pooled handles, at most
    # the pool cap.
    handles, proc_handles = r.delivered.handles, r.delivered.fd_handles
    shared = handles - 1 <= MAX_IDLE_HANDLES and proc_handles <= 1 + MAX_IDLE_HANDLES
    handle_figures = (
        f"1 live + {handles - 1} pooled ({proc_handles} in /proc); "
        f"{r.ramp_peak_handles} while connecting"
    )
    n = r.requested
    rss_target = f"node VmRSS with followers < {RSS_LIMIT_MIB:g} MiB"
    return [
        report.holds(
            f"{n} followers in /metrics", r.attached.followers >= n, str(r.attached.followers)
        ),
        report.holds(
            "every follower gets every entry", n > 0 and r.complete == n, f"{r.complete}/{n}"
        ),
        report.below(rss_target, rss, RSS_LIMIT_MIB, "{:.1f} MiB"),
        report.holds("one live journal handle, shared", shared, handle_figures),
        report.holds(
            "followers back to 0 after close", r.closed.followers == 0, str(r.closed.followers)
        ),
    ]
