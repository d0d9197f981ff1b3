"""`python -m bench [--entries N] [--runs N] [--followers N] [--skip-peers] [--load-seconds S]
[--merged-rate N] [--merged-seconds S] [--fanout-followers N] [--fanout-processes N]
[--fanout-workers N]
[--only logs|identity|gateway|merged|search|forward|fanout]`."""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import signal
import sys
import time
from collections.abc import Sequence
from types import FrameType

from app.devcluster.journald import JournaldNamespace
from bench import fanout_gateway, forward, gateway, identity, merged, report, search, sections
from bench.fill import KeepAlive, fill
from bench.report import Verdict
from bench.servers import gatewayd, node_reader

FD_HEADROOM = 1024


def positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {text}")
    return value


def positive_seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0: {text}")
    return value


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="The node reader against journalctl and systemd-journal-gatewayd on one "
        "fresh journal, follow latency, and many concurrent followers.",
    )
    p.add_argument("--entries", type=positive, default=300_000, help="entries in the journal")
    p.add_argument("--runs", type=positive, default=3, help="full-read runs (medians printed)")
    p.add_argument("--followers", type=positive, default=1000, help="concurrent SSE followers")
    p.add_argument("--skip-peers", action="store_true", help="skip journalctl and gatewayd")
    p.add_argument(
        "--load-seconds",
        type=positive_seconds,
        default=gateway.LOAD_SECONDS,
        help="seconds per load run in the gateway section",
    )
    p.add_argument(
        "--merged-rate",
        type=positive,
        default=merged.RATE,
        help="entries/s over the three agents in the merged section",
    )
    p.add_argument(
        "--merged-seconds",
        type=positive_seconds,
        default=merged.SECONDS,
        help="seconds of writing per run in the merged section",
    )
    p.add_argument(
        "--fanout-followers",
        type=positive,
        default=fanout_gateway.FOLLOWERS,
        help="SSE followers through the gateway in the fanout section",
    )
    p.add_argument(
        "--fanout-processes",
        type=positive,
        default=fanout_gateway.PROCESSES,
        help="client processes holding the fanout section's followers",
    )
    p.add_argument(
        "--fanout-workers",
        type=positive,
        default=fanout_gateway.WORKERS,
        help="gateway worker processes in the fanout section",
    )
    p.add_argument(
        "--only",
        choices=("logs", "identity", "gateway", "merged", "search", "forward", "fanout"),
        help="run one part: the node reader (logs), token/authorization/login (identity), "
        "the gateway against nginx proxy_pass and the direct node reader (gateway), a "
        "merged app stream over three agents (merged), grep= against journalctl --grep "
        "(search), `logway forward` into Redis against a journalctl | redis-cli pipe "
        "(forward), or many SSE followers through one gateway, broadcast and spread (fanout)",
    )
    return p.parse_args(argv)


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwind through every finally: processes, namespace


def raise_fd_limit(needed: int) -> int:
    """Followers need a socket each, here and in the node (which inherits our limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed + FD_HEADROOM
    if soft < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
        except ValueError:  # no CAP_SYS_RESOURCE: the hard limit is as far as we go
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def print_header(args: argparse.Namespace, fd_limit: int) -> None:
    one, five, fifteen = os.getloadavg()
    print(f"logway bench  {time.strftime('%Y-%m-%d %H:%M:%S %Z')}  cpus {os.cpu_count()}")
    print(f"load average at start: {one:.2f} {five:.2f} {fifteen:.2f}  (shared, noisy machine)")
    print(
        f"entries {args.entries:,}  runs {args.runs}  followers {args.followers}  "
        f"fd limit {fd_limit}  peers {'skipped' if args.skip_peers else 'on'}"
    )


def bench(args: argparse.Namespace) -> list[Verdict]:
    name = f"bench{os.getpid()}"
    with contextlib.ExitStack() as stack:
        ns = stack.enter_context(JournaldNamespace(name))
        stack.enter_context(KeepAlive(ns.runtime_dir / "stdout"))
        seconds = fill(ns.socket, args.entries)
        ns.sync()
        size = sum(p.stat().st_size for p in ns.directory.iterdir())
        print(
            f"journal {name}: wrote {args.entries:,} entries in {seconds:.1f} s "
            f"({args.entries / seconds:,.0f}/s), {report.mib(size)} on disk",
            flush=True,
        )
        node = stack.enter_context(node_reader(ns.name))
        node.start("/v1/fields/STREAM")
        gw = None
        if not args.skip_peers:
            gw = stack.enter_context(gatewayd(ns.directory))
            gw.start("/machine")
        print(
            f"node reader pid {node.pid} at {node.base_url}"
            + (f"; gatewayd pid {gw.pid} at {gw.base_url}" if gw else "")
        )
        suite, pids = sections.readers(node, gw, ns.name), sections.server_pids(node, gw)
        results = sections.run_reads(suite, args.runs, pids)
        verdicts = sections.ratios(results, sections.medians(results))
        verdicts.append(sections.latency(node, ns))
        verdicts += sections.followers(node, ns, args.followers)
        return verdicts


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    # The gateway holds a client and an upstream socket per fanout follower (inherited limit).
    fd_limit = raise_fd_limit(max(args.followers * 2, args.fanout_followers * 3))
    print_header(args, fd_limit)
    try:
        verdicts = bench(args) if args.only in (None, "logs") else []
        if args.only in (None, "identity"):
            verdicts += identity.run()
        if args.only in (None, "gateway"):
            plan = gateway.Plan(entries=args.entries, runs=args.runs, seconds=args.load_seconds)
            verdicts += gateway.run(plan)
        if args.only in (None, "search"):
            verdicts += search.run(args.runs)
        if args.only in (None, "merged"):
            verdicts += merged.run(
                merged.Plan(rate=args.merged_rate, seconds=args.merged_seconds, runs=args.runs)
            )
        if args.only in (None, "forward"):
            verdicts += forward.run(forward.Plan(entries=args.entries, runs=args.runs))
        if args.only in (None, "fanout"):
            verdicts += fanout_gateway.run(
                fanout_gateway.Plan(
                    followers=args.fanout_followers,
                    runs=args.runs,
                    processes=args.fanout_processes,
                    workers=args.fanout_workers,
                )
            )
    except KeyboardInterrupt:
        print("\ninterrupted; everything started was stopped", file=sys.stderr)
        return 130
    print(report.section("summary"))
    rows = [[v.target, v.measured, v.outcome] for v in verdicts]
    print(report.table(["target", "measured", "verdict"], rows, right=1))
    one, five, fifteen = os.getloadavg()
    print(f"load average at end: {one:.2f} {five:.2f} {fifteen:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
