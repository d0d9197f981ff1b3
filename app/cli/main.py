"""The `logway` command: thin argument parsing over importable functions."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    # Here, not at the top: `logway forward` and `logway ship` start without the others.
    from app.cli import dev, forward, gateway, iam, login, logs, node

    parser = argparse.ArgumentParser(prog="logway", description="Logway cluster logging API")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    node.add_parser(commands)
    gateway.add_parser(commands)
    commands.add_parser(
        "ship",
        help="run a task and ship its stdout/stderr to journald",
        add_help=False,
    )
    dev.add_parser(commands)
    login.add_parser(commands)
    logs.add_parser(commands)
    forward.add_parser(commands)
    iam.add_parser(commands)
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
    args = build_parser().parse_args(args_list)
    if args.command == "iam":
        from app.cli import iam

        return iam.run(args)
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
