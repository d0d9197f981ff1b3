"""`logway COMMAND` imports only that command's module: an operator's `logway logs` does not
pay for the gateway's and the dev cluster's imports."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from app.cli.main import COMMANDS, build_parser

HEAVY = ("app.gateway.app", "app.devcluster.supervisor", "app.node.app")


@pytest.mark.parametrize("command", ["logs", "login", "iam"])
def test_a_client_command_imports_no_server(command: str) -> None:
    code = (
        "import sys\n"
        "from app.cli.main import build_parser\n"
        f"build_parser({command!r})\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_one_commands_parser_holds_that_command_alone() -> None:
    parser = build_parser("logs")
    assert _choices(parser) == ["logs"]
    assert parser.parse_args(["logs", "master"]).command == "logs"


def test_the_whole_parser_knows_every_command_in_order() -> None:
    assert _choices(build_parser()) == list(COMMANDS)


def _choices(parser: argparse.ArgumentParser) -> list[str]:
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return list(sub.choices)
