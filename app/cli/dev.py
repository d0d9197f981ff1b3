"""`logway dev`: a whole local cluster behind the gateway (what `make run` starts).

The cluster (a Mesos master simulator, agents on their own loopback addresses, one journald
namespace and node reader per node, sample tasks under `logway ship`, bootstrapped
identities) is described in `app.devcluster.cluster` and run by `app.devcluster.supervisor`;
this is the command line. Once everything answers it writes `<data dir>/cluster.json` and the
dcos CLI configs (`app.devcluster.manifest`), and prints commands per identity. Ctrl-C, SIGTERM
or SIGHUP stops everything it started and removes those files.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from app.core.limits import raise_open_files
from app.devcluster import cluster as devcluster
from app.devcluster import manifest
from app.devcluster.accounts import kept_password, superuser_password_path
from app.devcluster.banner import banner
from app.devcluster.cluster import DEFAULT_AGENTS, MAX_AGENTS, DevClusterConfig
from app.devcluster.supervisor import DevClusterError, Interrupted, Supervisor

DEFAULTS = DevClusterConfig()
REDIS_PORT = 6379
REDIS_START_TIMEOUT = 10.0
WATCH_INTERVAL = 0.2


def add_parser(commands: Any) -> None:
    p: argparse.ArgumentParser = commands.add_parser(
        "dev", help="run a local cluster behind the gateway (what `make run` starts)"
    )
    p.add_argument("--master-ip", default=DEFAULTS.master_ip, help="Mesos, gateway and reader")
    agents = p.add_mutually_exclusive_group()
    agents.add_argument(
        "--agents",
        type=_agent_count,
        default=None,
        metavar="N",
        help=f"N agents at the addresses after the master's (default {DEFAULT_AGENTS}: "
        "127.0.0.2, 127.0.0.3)",
    )
    agents.add_argument(
        "--agent-ip",
        action="append",
        default=None,
        metavar="IP",
        help="one agent per address instead (repeatable)",
    )
    p.add_argument("--mesos-port", type=int, default=DEFAULTS.mesos_port)
    p.add_argument("--reader-port", type=int, default=DEFAULTS.reader_port)
    p.add_argument("--gateway-port", type=int, default=DEFAULTS.gateway_port)
    p.add_argument(
        "--namespace", default=DEFAULTS.namespace, help="prefix of the journald namespaces"
    )
    p.add_argument("--data-dir", type=Path, default=DEFAULTS.data_dir)
    p.add_argument(
        "--replicas",
        type=int,
        default=1,
        metavar="N",
        help="N gateway replicas on a throwaway PostgreSQL, nginx in front on the gateway's"
        " address (default 1: one gateway on SQLite)",
    )
    p.add_argument(
        "--gateway-workers",
        type=int,
        default=1,
        metavar="N",
        help="worker processes of each gateway (logway gateway --workers; one per core for "
        "thousands of followers)",
    )
    p.add_argument(
        "--with-redis",
        action="store_true",
        help=f"also start redis-server on the master's address, port {REDIS_PORT} (see "
        "--redis-port), for the banner's `logway forward` example",
    )
    p.add_argument("--redis-port", type=int, default=REDIS_PORT)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        agent_ips = args.agent_ip or devcluster.consecutive_ips(
            args.master_ip, args.agents or DEFAULT_AGENTS
        )
        config = DevClusterConfig(
            master_ip=args.master_ip,
            agent_ips=tuple(agent_ips),
            mesos_port=args.mesos_port,
            reader_port=args.reader_port,
            gateway_port=args.gateway_port,
            namespace=args.namespace,
            data_dir=args.data_dir.resolve(),
            replicas=args.replicas,
            gateway_workers=args.gateway_workers,
        )
    except ValueError as exc:
        print(f"logway dev: {exc}", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print(
            "logway dev needs root: it starts systemd-journald namespaces (run `sudo make run`).",
            file=sys.stderr,
        )
        return 1
    # Inherited by every process the cluster starts (journald, node readers, gateways, nginx).
    raise_open_files()
    password = _password(config.data_dir)
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
    redis = None
    try:
        if args.with_redis:
            redis = _start_redis(config.master_ip, args.redis_port, config.data_dir)
        manifest.write(cluster, supervisor.identities, master_id=supervisor.master_id)
        logway, path = _logway()
        address = f"{config.master_ip}:{args.redis_port}" if redis is not None else None
        print(banner(cluster, supervisor.identities, logway=logway, path=path, redis=address))
        sys.stdout.flush()
        while not interrupt.wait(WATCH_INTERVAL):
            restarted = supervisor.restart_gateway()
            if restarted is not None:
                print(f"logway dev: {restarted}", file=sys.stderr)
            exited = supervisor.exited()
            if exited is None and redis is not None and redis.poll() is not None:
                exited = f"redis-server exited with {redis.returncode}"
            if exited is not None:
                print(f"logway dev: {exited}; stopping everything", file=sys.stderr)
                code = 1
                break
    except DevClusterError as exc:
        print(f"logway dev: {exc}", file=sys.stderr)
        code = 1
    finally:
        manifest.remove(config.data_dir)  # stale once the cluster is gone
        if redis is not None and redis.poll() is None:
            redis.terminate()
            redis.wait(10)
        supervisor.stop()
    return code


def _start_redis(ip: str, port: int, data_dir: Path) -> subprocess.Popen[bytes]:
    """redis-server in the foreground, no persistence, its output in the data directory."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise DevClusterError("--with-redis: no redis-server (apt-get install redis-server)")
    log = (data_dir / "redis.log").open("ab")
    argv = [binary, "--bind", ip, "--port", str(port), "--save", "", "--appendonly", "no"]
    proc = subprocess.Popen(argv, stdout=log, stderr=log)
    log.close()
    deadline = time.monotonic() + REDIS_START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DevClusterError(f"redis-server exited with {proc.returncode}: see {log.name}")
        with socket.socket() as s:
            if s.connect_ex((ip, port)) == 0:
                return proc
        time.sleep(0.05)
    proc.terminate()
    proc.wait(10)
    raise DevClusterError(f"redis-server did not listen on {ip}:{port}")


def _agent_count(value: str) -> int:
    try:
        count = int(value)
    except ValueError:
        count = 0
    if not 1 <= count <= MAX_AGENTS:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_AGENTS}")
    return count


def _password(data_dir: Path) -> str:
    path = superuser_password_path(data_dir)
    store = data_dir / "gateway"
    if not path.exists() and store.exists():
        # The store's superuser was made with a password nobody has any more.
        print(f"logway dev: no {path}: starting over with a new IAM store", file=sys.stderr)
        shutil.rmtree(store)
    return kept_password(path)


def _logway() -> tuple[str, Path | None]:
    """How a shell runs logway: the venv's script once its directory is on PATH, else this
    interpreter with `-m` (from the checkout)."""
    script = Path(sys.executable).with_name("logway")
    if script.exists():
        return "logway", script.parent
    return f"{sys.executable} -m app.cli.main", None
