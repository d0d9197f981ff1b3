"""The search section (issue 14): `grep=` on the node reader against `journalctl --grep`
(PCRE2) over the same 1,000,000-entry namespace with 0.1 % matching lines, both writing
JSON; then one SSE follower with `grep=` (write → client latency of its matches)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import time
import urllib.request
from collections.abc import Iterator
from urllib.parse import quote

from app.devcluster.journald import JournaldNamespace
from bench import follow, report, throughput
from bench.fill import TASKS, KeepAlive, NativeWriter, task_datagram, task_prefix
from bench.report import Verdict
from bench.servers import LOOPBACK, cpu_seconds, node_reader
from bench.throughput import Reader

ENTRIES = 1_000_000
EVERY = 1000  # one line in EVERY matches: 0.1 %
NEEDLE = "needle-in-the-journal"
PATTERN = "needle-in-the-[a-z]+"  # the same in RE2 and PCRE2
RATIO_TARGET = 2.0
LATENCY_PROBES = 2000
PROBE_PATTERN = r"probe \d{5}[05] of"  # one probe in five
LATENCY_P99_MS = 50.0
READER_HOST = LOOPBACK
LOGWAY, JOURNALCTL = "logway grep= (NDJSON)", "journalctl --grep -o json"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _metrics(base_url: str) -> str:
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=10) as response:
        text: str = response.read().decode()
    return text


def _datagrams(entries: int) -> Iterator[bytes]:
    prefixes = [task_prefix(t) for t in range(TASKS)]
    for i in range(entries):
        payload = task_datagram(i, prefixes)
        if i % EVERY == EVERY // 2:
            payload = payload.replace(b"MESSAGE=bench line", f"MESSAGE={NEEDLE}".encode())
        yield payload


def run(runs: int, entries: int = ENTRIES, probes: int = LATENCY_PROBES) -> list[Verdict]:
    name = f"benchsearch{os.getpid()}"
    with contextlib.ExitStack() as stack:
        ns = stack.enter_context(JournaldNamespace(name))
        stack.enter_context(KeepAlive(ns.runtime_dir / "stdout"))
        started = time.perf_counter()
        with NativeWriter(ns.socket) as writer:
            writer.send_all(_datagrams(entries))
        ns.sync()
        print(
            f"journal {name}: {entries:,} entries, {entries // EVERY:,} matching "
            f"`{PATTERN}`, written in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        node = stack.enter_context(node_reader(ns.name, host=READER_HOST))
        node.start("/v1/fields/STREAM")
        url = f"{node.base_url}/v1/range/?grep={quote(PATTERN)}"
        suite = [
            throughput.curl(LOGWAY, url, "application/json"),
            Reader(
                JOURNALCTL,
                (
                    "journalctl",
                    f"--namespace={name}",
                    f"--grep={PATTERN}",
                    "-o",
                    "json",
                    "--no-pager",
                ),
            ),
        ]
        rates: dict[str, list[float]] = {r.label: [] for r in suite}
        per_cpu: dict[str, list[float]] = {r.label: [] for r in suite}
        for n in range(1, runs + 1):
            print(report.section(f"search over {entries:,} entries, run {n}/{runs}"), flush=True)
            rows = []
            for reader in suite:
                # CPU: the node reader's for logway (curl only reads a pipe), journalctl's own
                node_cpu, child_cpu = cpu_seconds(node.pid), _children_cpu()
                read = throughput.run(reader)
                if reader.label == LOGWAY:
                    cpu = cpu_seconds(node.pid) - node_cpu
                else:
                    cpu = _children_cpu() - child_cpu
                scanned = entries / read.seconds  # every entry is looked at
                by_cpu = entries / cpu if cpu > 0 else 0.0
                rates[reader.label].append(scanned)
                per_cpu[reader.label].append(by_cpu)
                wall = f"{read.seconds:.2f} s"
                cells = [f"{read.entries:,}", wall, report.rate(scanned), f"{cpu:.2f} s"]
                rows.append([reader.label, *cells, report.rate(by_cpu)])
            columns = ["reader", "matches", "wall", "scanned/s", "cpu", "scanned/cpu-s"]
            print(report.table(columns, rows), flush=True)
        # Which path logway's reads took (app/journal/index.py): the node reader counts them.
        paths = re.findall(r'index_searches_total\{path="(.*)"\} (\d+)', _metrics(node.base_url))
        taken = ", ".join(f"{path} x{n}" for path, n in paths) or "none counted"
        print(f"logway's grep= range reads took: {taken} (index = journald's MESSAGE index)")
        medians = {label: report.median(values) for label, values in rates.items()}
        name_ratio = f"{LOGWAY} / {JOURNALCTL} >= {RATIO_TARGET:g}x"
        ratio = medians[LOGWAY] / medians[JOURNALCTL]
        print(
            f"medians: logway {report.rate(medians[LOGWAY])}, journalctl "
            f"{report.rate(medians[JOURNALCTL])} entries scanned/s: ratio {ratio:.2f}x"
        )
        cpu_ratio = report.median(per_cpu[LOGWAY]) / report.median(per_cpu[JOURNALCTL])
        print(f"per CPU second (the machine is shared): ratio {cpu_ratio:.2f}x")
        verdicts = [report.at_least(name_ratio, ratio, RATIO_TARGET, "{:.2f}x")]
        expect = probes // 5
        print(report.section(f"follow with grep=: {probes} entries, {expect} match"))
        result = asyncio.run(
            follow.measure(
                node.base_url,
                ns.socket,
                probes,
                # since=now: earlier probes (of an earlier run) are not this follower's
                query=f"grep={quote(PROBE_PATTERN)}&since={time.time_ns() // 1000}",
                expect=expect,
            )
        )
        p50, p99 = result.percentile(50), result.percentile(99)
        print(f"received {result.received}/{result.sent}: p50 {p50:.1f} ms  p99 {p99:.1f} ms")
        since = f"since={time.time_ns() // 1000}"  # not the probes just written
        base = asyncio.run(follow.measure(node.base_url, ns.socket, probes, query=since))
        print(
            f"the same follower without grep= (baseline, this run): p50 "
            f"{base.percentile(50):.1f} ms  p99 {base.percentile(99):.1f} ms"
        )
        verdicts.append(
            report.below(
                f"follow grep= p99 < {LATENCY_P99_MS:g} ms", p99, LATENCY_P99_MS, "{:.1f} ms"
            )
        )
        return verdicts
