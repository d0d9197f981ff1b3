"""`logway node`: serve one journal over the dcos-log API."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import uvicorn

from app.core.config import NodeSettings
from app.core.graceful import GracefulServer
from app.core.heap import freeze_startup_heap
from app.core.limits import LISTEN_BACKLOG, raise_process_limits
from app.core.logging import configure_logging
from app.node.app import create_app

log = logging.getLogger("logway.node")


def add_parser(commands: Any) -> None:
    p: argparse.ArgumentParser = commands.add_parser(
        "node", help="serve this node's journal over HTTP (the dcos-log role)"
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--journal-namespace", metavar="NAME")
    where.add_argument("--journal-dir", type=Path, metavar="DIR")
    p.add_argument("--host", default=None)
    p.add_argument("--port", type=int, default=None)
    p.add_argument("--uds", type=Path, default=None, metavar="PATH", help="listen on a unix socket")
    p.add_argument("--no-auth", action="store_true", help="accept every request (local use only)")
    p.add_argument("--public-key", type=Path, metavar="PEM", help="verify tokens with this key")
    p.add_argument("--jwks-url", metavar="URL", help="verify tokens with keys from this JWKS")
    p.add_argument(
        "--allow-uid",
        action="append",
        default=None,
        metavar="UID",
        help="uid allowed to read (repeatable; the gateway's service account)",
    )
    p.add_argument(
        "--address",
        metavar="HOST:PORT",
        help="this reader's address as the gateway dials it; tokens must be addressed to it "
        "(default: --host:--port unless listening on every interface or a socket)",
    )
    p.add_argument("--heartbeat", type=float, default=None, metavar="SECONDS")
    p.add_argument("--log-level", default="INFO")
    p.set_defaults(run=run)


def settings_from(args: argparse.Namespace) -> NodeSettings:
    given = {
        "journal_namespace": args.journal_namespace,
        "journal_dir": args.journal_dir,
        "host": args.host,
        "port": args.port,
        "uds": args.uds,
        "public_key": args.public_key,
        "jwks_url": args.jwks_url,
        "allowed_uids": tuple(args.allow_uid) if args.allow_uid else None,
        "address": args.address,
        "heartbeat_interval": args.heartbeat,
    }
    if args.no_auth:
        given["no_auth"] = True
    return NodeSettings(**{k: v for k, v in given.items() if v is not None})


# Range reads encode on a journal thread while the event loop writes to sockets; with the
# default 5 ms GIL switch interval the loop waits up to that long to send each prepared
# batch. 1 ms keeps both moving (measured in make bench).
GIL_SWITCH_INTERVAL = 0.001


def run(args: argparse.Namespace) -> int:
    sys.setswitchinterval(GIL_SWITCH_INTERVAL)
    configure_logging(args.log_level)
    raise_process_limits(log)
    settings = settings_from(args)
    if settings.no_auth:
        log.warning(
            "AUTHENTICATION IS OFF (--no-auth): anyone who can reach %s can read this journal",
            settings.uds or f"{settings.host}:{settings.port}",
        )
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        uds=str(settings.uds) if settings.uds else None,
        log_level=args.log_level.lower(),
        access_log=False,
        timeout_graceful_shutdown=2,
        backlog=LISTEN_BACKLOG,
    )
    # Start-up objects out of the collector's sight once serving (`app.core.heap`, issue 17).
    GracefulServer(config, app.state.open_streams, on_started=freeze_startup_heap).run()
    return 0
