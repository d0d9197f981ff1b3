"""`python -m bench.stalls [--rate N] [--seconds S] [--runs N]`: where the gateway's tail latency
comes from (issue 17, target 4), on a machine too busy for `make bench` to say.

The gateway section's cluster (a journal, the Mesos simulator, the gateway, one node reader),
the gateway run under `bench.stall_watch`; then 32 clients at once, paced at `--rate` in all,
through the gateway and straight to the node reader, alternately. Per run: p50/p99/max from each
request's due time; the gateway's CPU per reply; its longest garbage collection (CPU); its
longest event-loop lag and how much of it was the loop's own CPU; and how long its loop thread
waited for a CPU (`/proc/PID/task/PID/schedstat`), which is what a shared machine adds.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from bench import cluster
from bench.load import Target, hammer
from bench.report import median
from bench.servers import Server, cpu_seconds

HOSTS = cluster.Hosts(mesos="127.0.74.20", gateway="127.0.74.21", node="127.0.74.22")
CONNECTIONS = 32
PATH = "/v1/range/?skip_prev=10"


@dataclass(frozen=True, slots=True)
class Events:
    gc_ms: float  # longest collection, CPU
    full_collections: int
    lag_ms: float  # longest loop lag, wall
    lag_cpu_ms: float  # the loop's own CPU during that lag


def events(log: Path, start: float, end: float) -> Events:
    gcs: list[float] = []
    full = 0
    lag, lag_cpu = 0.0, 0.0
    for line in log.read_text().splitlines():
        kind, at, ms, rest = line.split(" ", 3)
        if not start <= float(at) <= end:
            continue
        if kind == "gc":
            gcs.append(float(ms))
            full += "generation=2" in rest
        elif kind == "lag" and float(ms) > lag:
            lag, lag_cpu = float(ms), float(rest.removeprefix("cpu="))
    return Events(max(gcs, default=0.0), full, lag, lag_cpu)


def run_queue_ns(pid: int) -> int:
    """Nanoseconds the process's main thread has waited on a run queue for a CPU."""
    return int(Path(f"/proc/{pid}/task/{pid}/schedstat").read_text().split()[1])


def watched(log: Path, make: Callable[..., Server]) -> Callable[..., Server]:
    """`make`, with the server started under `bench.stall_watch` writing to `log`."""

    def start(*args: object, **kwargs: object) -> Server:
        server = make(*args, **kwargs)
        python, _, _, *rest = server._argv  # [python, -m, app.cli.main, …]
        server._argv = [python, "-m", "bench.stall_watch", str(log), "logway", *rest]
        return server

    return start


def percentile(values: tuple[float, ...], p: float) -> float:
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))] if values else 0.0


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.stalls")
    p.add_argument("--rate", type=float, default=200.0, help="requests/s over all 32 clients")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--entries", type=int, default=20_000)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="logway-stalls-") as tmp:
        log = Path(tmp) / "gateway-events"
        log.touch()
        cluster.logway_gateway = watched(log, cluster.logway_gateway)  # type: ignore[assignment]
        with cluster.gateway_and_node(args.entries, hosts=HOSTS, prefix="stalls") as core:
            through = f"/system/v1/agent/{cluster.AGENT_ID}/logs{PATH}"
            cluster.wait_resolved(core.gateway.base_url + through, core.user_token)
            accept = ("Accept", "application/json")
            gw = core.gateway
            targets = {
                "gateway": Target(
                    gw.host,
                    gw.port,
                    through,
                    (accept, ("Authorization", f"token={core.user_token}")),
                    10,
                ),
                "direct": Target(
                    core.node.host,
                    core.node.port,
                    PATH,
                    (accept, ("Authorization", f"token={core.service_token}")),
                    10,
                ),
            }
            hammer(targets["gateway"], connections=CONNECTIONS, seconds=1.0)  # warm up
            p99s: dict[str, list[float]] = {label: [] for label in targets}
            for n in range(args.runs):
                for label, target in targets.items():
                    load = partial(
                        hammer,
                        target,
                        connections=CONNECTIONS,
                        seconds=args.seconds,
                        rate=args.rate,
                    )
                    start, cpu, queued = time.monotonic(), cpu_seconds(gw.pid), run_queue_ns(gw.pid)
                    done = load()
                    end = time.monotonic()
                    p99s[label].append(percentile(done.millis, 99))
                    line = (
                        f"run {n + 1} {label:7} {done.ok:,} OK, {done.failed} not; p50 "
                        f"{percentile(done.millis, 50):.2f} p99 {p99s[label][-1]:.2f} max "
                        f"{percentile(done.millis, 100):.2f} ms; load {os.getloadavg()[0]:.2f}"
                    )
                    if label == "gateway":
                        e = events(log, start, end)
                        per_reply = (cpu_seconds(gw.pid) - cpu) / max(1, done.ok) * 1e3
                        waited = (run_queue_ns(gw.pid) - queued) / 1e6 / (end - start)
                        line += (
                            f" | gateway CPU {per_reply:.3f} ms/reply; longest GC {e.gc_ms:.1f} ms "
                            f"CPU ({e.full_collections} full); longest loop lag {e.lag_ms:.1f} ms "
                            f"({e.lag_cpu_ms:.1f} ms of it the loop's own CPU); waited for a CPU "
                            f"{waited:.0f} ms/s"
                        )
                    print(line, flush=True)
            for label, values in p99s.items():
                every = ", ".join(f"{v:.1f}" for v in values)
                print(f"median p99 {label}: {median(values):.2f} ms (runs {every})")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
