"""`python -m app.devcluster.mesos [--fixture FILE] [--listen HOST:PORT]... [--leader N]`

Serves until interrupted. Without `--fixture`, a small sample cluster whose agents sit at
the `--agent-ip` addresses (default 127.0.0.2 and 127.0.0.3).
"""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

from app.devcluster.mesos.model import SimCluster
from app.devcluster.mesos.server import MesosSimulator


def _address(value: str) -> tuple[str, int]:
    host, colon, port = value.rpartition(":")
    if not colon or not host or not port.isdecimal():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m app.devcluster.mesos", description=__doc__)
    parser.add_argument("--fixture", type=Path, help="a captured /master/state to serve")
    parser.add_argument("--listen", type=_address, action="append", help="HOST:PORT per master")
    parser.add_argument("--leader", type=int, default=0, help="index of the leading master")
    parser.add_argument("--agent-ip", action="append", help="sample cluster agent addresses")
    args = parser.parse_args(argv)
    source = args.fixture or SimCluster.sample(tuple(args.agent_ip or ("127.0.0.2", "127.0.0.3")))
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    with MesosSimulator(
        source, masters=args.listen or [("127.0.0.1", 5050)], leader=args.leader
    ) as sim:
        print(f"Mesos simulator: masters {' '.join(sim.urls)}, leader {sim.leader_url}", flush=True)
        done.wait()


if __name__ == "__main__":
    main()
