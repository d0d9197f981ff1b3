"""The `logway` command: thin argument parsing over importable functions."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Each command's module adds its own subparser; only the one asked for is imported (the
# gateway's and the dev cluster's imports cost `logway logs` most of a second otherwise).
COMMANDS = {
    "node": "app.cli.node",
    "gateway": "app.cli.gateway",
    "ship": None,  # the shipper parses its own arguments (`main`)
    "dev": "app.cli.dev",
    "login": "app.cli.login",
    "logs": "app.cli.logs",
    "forward": "app.cli.forward",
    "iam": "app.cli.iam",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser, or with `command` (a name of COMMANDS) that command's alone."""
    parser = argparse.ArgumentParser(prog="logway", description="Logway cluster logging API")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in COMMANDS.items():
        if command is not None and name != command:
            continue
        if module is None:
            commands.add_parser(
                name, help="run a task and ship its stdout/stderr to journald", add_help=False
            )
        else:
            importlib.import_module(module).add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["ship"]:
        # The shipper owns its argument parsing (everything after `--` is the task).
        from app.shipper.cli import main as ship_main

        return ship_main(args_list[1:])
    if args_list[:1] == ["forward"]:
        # A long-running command restarted by supervisors: only its own imports.
        from app.cli.forward import main as forward_main

        return forward_main(args_list[1:])
    first = args_list[0] if args_list else None
    args = build_parser(first if first in COMMANDS else None).parse_args(args_list)
    if args.command == "iam":
        from app.cli import iam

        return iam.run(args)
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
