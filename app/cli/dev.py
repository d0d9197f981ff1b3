"""`logway dev`: a whole local cluster behind the gateway (what `make run` starts).

The cluster (a Mesos master simulator, agents on their own loopback addresses, one journald
namespace and node reader per node, sample tasks under `logway ship`) is described in
`app.devcluster.cluster` and run by `app.devcluster.supervisor`; this is the command line.
Ctrl-C, SIGTERM or SIGHUP stops everything it started.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from app.devcluster import cluster as devcluster
from app.devcluster.accounts import superuser_password, write_private
from app.devcluster.banner import banner
from app.devcluster.cluster import SUPERUSER, DevClusterConfig
from app.devcluster.supervisor import DevClusterError, Interrupted, Supervisor

DEFAULTS = DevClusterConfig()
WATCH_INTERVAL = 0.2


def add_parser(commands: Any) -> None:
    p: argparse.ArgumentParser = commands.add_parser(
        "dev", help="run a local cluster behind the gateway (what `make run` starts)"
    )
    p.add_argument("--master-ip", default=DEFAULTS.master_ip, help="Mesos, gateway and reader")
    p.add_argument(
        "--agent-ip",
        action="append",
        default=None,
        metavar="IP",
        help="one agent per address (repeatable; default 127.0.0.2 and 127.0.0.3)",
    )
    p.add_argument("--mesos-port", type=int, default=DEFAULTS.mesos_port)
    p.add_argument("--reader-port", type=int, default=DEFAULTS.reader_port)
    p.add_argument("--gateway-port", type=int, default=DEFAULTS.gateway_port)
    p.add_argument(
        "--namespace", default=DEFAULTS.namespace, help="prefix of the journald namespaces"
    )
    p.add_argument("--data-dir", type=Path, default=DEFAULTS.data_dir)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        print(
            "logway dev needs root: it starts systemd-journald namespaces (run `sudo make run`).",
            file=sys.stderr,
        )
        return 1
    try:
        config = DevClusterConfig(
            master_ip=args.master_ip,
            agent_ips=tuple(args.agent_ip or DEFAULTS.agent_ips),
            mesos_port=args.mesos_port,
            reader_port=args.reader_port,
            gateway_port=args.gateway_port,
            namespace=args.namespace,
            data_dir=args.data_dir.resolve(),
        )
    except ValueError as exc:
        print(f"logway dev: {exc}", file=sys.stderr)
        return 2
    password = _password(config.data_dir)
    login_body = config.data_dir / "superuser-login.json"
    write_private(login_body, json.dumps({"uid": SUPERUSER, "password": password}) + "\n")
    cluster = devcluster.build(config, python=sys.executable)

    interrupt = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda *_: interrupt.set())
    supervisor = Supervisor(cluster, password=password, interrupt=interrupt)
    try:
        supervisor.start()
    except Interrupted:
        return 0
    except DevClusterError as exc:
        print(f"logway dev: {exc}", file=sys.stderr)
        return 1
    code = 0
    try:
        print(banner(cluster, password=password, login_body=login_body, logway=_logway()))
        sys.stdout.flush()
        while not interrupt.wait(WATCH_INTERVAL):
            exited = supervisor.exited()
            if exited is not None:
                print(f"logway dev: {exited}; stopping everything", file=sys.stderr)
                code = 1
                break
    finally:
        supervisor.stop()
    return code


def _password(data_dir: Path) -> str:
    path = data_dir / "superuser-password"
    store = data_dir / "gateway"
    if not path.exists() and store.exists():
        # The store's superuser was made with a password nobody has any more.
        print(f"logway dev: no {path}: starting over with a new IAM store", file=sys.stderr)
        shutil.rmtree(store)
    return superuser_password(path)


def _logway() -> str:
    script = Path(sys.executable).with_name("logway")
    return str(script) if script.exists() else f"{sys.executable} -m app.cli.main"
