"""`logway forward`: ship a source's logs to aggregators, at least once, resumable.

    logway forward SOURCE --to URL [--to URL…] --state PATH [--since WHEN] [--filter F:V]…
    logway forward --config FILE
    logway forward status --state PATH

SOURCE is a source of `logway logs` (agent ID, master, leader, task NAME [stdout|stderr],
role ROLE, app ID) or `cluster`: every node's journal. Exit status: 0 after SIGTERM/SIGINT
(the last batch sent and saved), 1 error, 2 bad usage, 3 access denied or revoked, 4 a sink
refused what was sent.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import uvloop

from app.cli.http import EXIT_ERROR, EXIT_USAGE, CliError
from app.cli.logs_source import SOURCE_KINDS
from app.forward import config as forward_config
from app.forward import position
from app.forward.run import run as run_forwarder
from app.forward.sink import ConfigError

EPILOG = """\
examples:
  logway forward app /prod --to 'redis://127.0.0.1:6379/0?key=logstash' --state prod.json
  logway forward role dev --to syslog+tls://splunk:6514?ca=/etc/ssl/ca.pem --state dev.json
  logway forward cluster --to journal-remote+http://central:19532 --state cluster.json \\
      --service-account forwarder --private-key forwarder.pem
  logway forward task web.prod --to 'otlp+http://collector:4318/v1/logs' --state web.json
  logway forward agent <id> --to 'file:///var/log/agent.ndjson?max_bytes=104857600' \\
      --state agent.json --since 1h
  logway forward --config /etc/logway/forward.toml
  logway forward status --state prod.json

Sinks: redis://HOST:PORT/DB?key=NAME[&mode=stream], syslog+tcp://HOST:PORT,
syslog+tls://HOST:PORT[?ca=FILE], journal-remote+http(s)://HOST:PORT,
otlp+http(s)://HOST:PORT/v1/logs, file:///PATH[?max_bytes=N&keep=K].
The first start reads everything the source holds (or --since); later starts resume from
the position in --state, saved after every sink accepted a batch.
The gateway: --url, else LOGWAY_URL, else `logway login`'s; the identity: --service-account
with --private-key (logs in and renews), else LOGWAY_TOKEN, else `logway login`'s token.
exit status: 0 stopped, 1 error, 2 bad usage, 3 denied or revoked, 4 a sink refused."""

CLUSTER_HELP = "every node's journal: every master's and each agent's (needs system-logs)"


def _add_identity(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    extra: dict[str, Any] = {"default": argparse.SUPPRESS} if suppress else {}
    parser.add_argument("--url", metavar="URL", help="the gateway", **extra)
    parser.add_argument("--service-account", metavar="UID", help="log in as UID", **extra)
    parser.add_argument("--private-key", metavar="PEM", help="the service account's key", **extra)
    parser.add_argument(
        "--metrics", metavar="HOST:PORT", help="serve Prometheus metrics on /metrics", **extra
    )


def add_parser(commands: Any) -> None:
    p: argparse.ArgumentParser = commands.add_parser(
        "forward",
        help="ship logs to Redis/Logstash, syslog, journal-remote, OTLP or files",
        description="Ship a source's logs to aggregators, at least once, resumable.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", type=Path, metavar="FILE", help="a TOML file of pipelines")
    _add_identity(p, suppress=False)
    sources = p.add_subparsers(dest="source", metavar="SOURCE")
    status = sources.add_parser("status", help="a running or stopped pipeline's progress")
    status.add_argument("--state", type=Path, required=True, metavar="PATH")
    kinds = [(k.name, k.help, k.positionals) for k in SOURCE_KINDS]
    kinds.append((forward_config.CLUSTER, CLUSTER_HELP, ()))
    for name, help_text, positionals in kinds:
        sp = sources.add_parser(name, help=help_text, description=help_text)
        for positional in positionals:
            if positional.default is None:
                sp.add_argument(positional.name, metavar=positional.name.upper())
            else:
                sp.add_argument(
                    positional.name,
                    nargs="?",
                    default=positional.default,
                    choices=positional.choices,
                )
        sp.add_argument("--to", action="append", default=[], metavar="URL", help="a sink")
        sp.add_argument("--state", metavar="PATH", help="the file that holds the position")
        sp.add_argument("--since", metavar="WHEN", help="where the first start begins")
        sp.add_argument("--filter", action="append", default=[], metavar="FIELD:VALUE")
        sp.add_argument("--unit", metavar="UNIT", help="one systemd unit (node sources)")
        sp.add_argument("--batch", type=int, default=forward_config.DEFAULT_BATCH, metavar="N")
        sp.add_argument("--name", help="the pipeline's name in logs and metrics")
        _add_identity(sp, suppress=True)
        sp.set_defaults(positionals=[x.name for x in positionals])
    p.set_defaults(run=run)


def config_from(args: argparse.Namespace) -> forward_config.Config:
    if args.config is not None:
        if args.source is not None:
            raise CliError("--config and a source on the command line: give one", EXIT_USAGE)
        loaded = forward_config.load(args.config)
        # The command line wins over the file for the identity and the metrics port.
        key = args.private_key
        return forward_config.Config(
            pipelines=loaded.pipelines,
            url=args.url or loaded.url,
            service_account=args.service_account or loaded.service_account,
            private_key=Path(key) if key else loaded.private_key,
            metrics=args.metrics or loaded.metrics,
        )
    if args.source is None:
        raise CliError("expected a SOURCE (or --config FILE); see --help", EXIT_USAGE)
    words = [args.source, *(getattr(args, name) for name in args.positionals)]
    spec = forward_config.spec(
        name=args.name or " ".join(words),
        words=words,
        since=args.since,
        filters=args.filter,
        unit=args.unit,
        state=args.state,
        sinks=args.to,
        batch_size=args.batch,
    )
    return forward_config.Config(
        pipelines=(spec,),
        url=args.url,
        service_account=args.service_account,
        private_key=Path(args.private_key) if args.private_key else None,
        metrics=args.metrics,
    )


def run(args: argparse.Namespace) -> int:
    try:
        if args.source == "status":
            return show_status(args.state)
        config = config_from(args)
        if config.service_account is not None and config.private_key is None:
            raise CliError("--service-account needs --private-key", EXIT_USAGE)
        # uvloop, as the gateway's uvicorn: the event loop's own share of the CPU per entry
        # (epoll, transports, callbacks) was ~15% of the forwarder's on asyncio's.
        return uvloop.run(run_forwarder(config, os.environ))
    except CliError as exc:
        return _fail(str(exc), exc.code)
    except (ConfigError, ValueError) as exc:
        return _fail(str(exc), EXIT_USAGE)
    except position.PositionError as exc:
        return _fail(str(exc), EXIT_ERROR)
    except KeyboardInterrupt:
        return 0


def _fail(message: str, code: int) -> int:
    print(f"logway forward: {message}", file=sys.stderr)
    return code


def show_status(state: Path) -> int:
    """What the pipeline saved and last reported: position, lag, entries/s, sink errors."""
    status = position.read_status(state)
    if status is None:
        return _fail(f"no status beside {state} (has the pipeline run?)", EXIT_ERROR)
    age = time.time() - float(status.get("updated_at", 0))
    running = _alive(status.get("pid")) and age < 10
    lag = status.get("lag_seconds")
    lines = [
        f"pipeline  {status.get('pipeline')} ({status.get('source')})",
        f"state     {'running' if running else 'not running'}, "
        f"reported {age:.0f} s ago (pid {status.get('pid')})",
        f"entries   {status.get('entries')} acknowledged, {status.get('entries_per_second')}/s",
        f"lag       {'-' if lag is None else f'{lag:.1f} s'}",
    ]
    for feed, cursor in sorted(status.get("position", {}).items()):
        lines.append(f"position  {feed or 'source'}: {cursor}")
    for name, sink in status.get("sinks", {}).items():
        text = f"sink      {name}: {sink.get('errors', 0)} errors"
        if sink.get("retrying"):
            text += ", retrying"
        if sink.get("last_error"):
            text += f"; last: {sink['last_error']}"
        lines.append(text)
    print("\n".join(lines))
    return 0


def _alive(pid: object) -> bool:
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main(argv: list[str]) -> int:
    """`logway forward …` without importing the other commands (the gateway's and the dev
    cluster's modules cost seconds): a supervisor restarting a forwarder waits less."""
    parser = argparse.ArgumentParser(prog="logway")
    add_parser(parser.add_subparsers(dest="command", required=True))
    result: int = run(parser.parse_args(["forward", *argv]))
    return result
