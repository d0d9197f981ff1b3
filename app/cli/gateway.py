"""`logway gateway`: the cluster gateway (the IAM, embedded or remote, and the cluster log
routes)."""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import uvicorn

from app.core.config import GatewaySettings
from app.core.graceful import GracefulServer
from app.core.heap import freeze_startup_heap
from app.core.limits import LISTEN_BACKLOG, raise_process_limits
from app.core.logging import configure_logging
from app.core.workers import reuseport_sockets, run_workers
from app.gateway.app import create_app


def add_parser(commands: Any) -> None:
    p: argparse.ArgumentParser = commands.add_parser(
        "gateway", help="run the gateway: embedded IAM and cluster log routes"
    )
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--data-dir", type=Path, default=None, help="IAM store and signing keys")
    p.add_argument(
        "--mesos",
        action="append",
        default=None,
        metavar="URL",
        help="a Mesos master's base URL (repeatable; default http://leader.mesos:5050)",
    )
    p.add_argument("--reader-port", type=int, default=None, help="the node readers' port")
    p.add_argument(
        "--master-reader-url",
        default=None,
        help="this master's own node reader (default: the leading master's reader)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes on the one address, SO_REUSEPORT (default 1; one per core "
        "for thousands of followers: deploy/README.md)",
    )
    p.add_argument("--log-level", default="INFO")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    configure_logging(args.log_level)
    raise_process_limits(logging.getLogger("logway.gateway"))
    given = {
        "host": args.host,
        "port": args.port,
        "data_dir": args.data_dir,
        "mesos_masters": tuple(args.mesos) if args.mesos else None,
        "reader_port": args.reader_port,
        "master_reader_url": args.master_reader_url,
        "workers": args.workers,
    }
    try:
        settings = GatewaySettings(**{k: v for k, v in given.items() if v is not None})
    except ValueError as exc:  # pydantic's ValidationError is one too
        print(f"logway gateway: invalid configuration: {exc}", file=sys.stderr)
        return 2
    if settings.workers == 1:
        return _serve(settings, args.log_level, None, None)
    try:
        sockets = reuseport_sockets(settings.host, settings.port, settings.workers, LISTEN_BACKLOG)
    except OSError as exc:
        print(
            f"logway gateway: cannot listen on {settings.host}:{settings.port}: {exc}",
            file=sys.stderr,
        )
        return 1
    return run_workers(partial(_serve, settings, args.log_level), sockets)


def _serve(
    settings: GatewaySettings,
    log_level: str,
    sock: socket.socket | None,
    started: Callable[[], None] | None,
) -> int:
    """One gateway process: on `sock` (a worker's) or on its own socket."""
    try:
        app = create_app(settings)
    except ValueError as exc:
        print(f"logway gateway: invalid configuration: {exc}", file=sys.stderr)
        return 2
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=2,
        backlog=LISTEN_BACKLOG,
    )

    def on_started() -> None:
        # Start-up objects out of the collector's sight once serving (`app.core.heap`, issue
        # 17); then a worker's parent may start the next.
        freeze_startup_heap()
        if started is not None:
            started()

    GracefulServer(config, app.state.open_streams, on_started=on_started).run(
        sockets=None if sock is None else [sock]
    )
    return 0
