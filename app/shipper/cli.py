"""`logway ship`: run a task with its stdout and stderr written to journald, line by line.

    logway ship [--journal-namespace NAME | --socket PATH]
                --agent-id A --framework-id F --executor-id E --container-id C
                [--task-id T] [--identifier NAME] [-- CMD ARGS...]

Every line the command writes becomes one journal entry, sent over journald's native protocol
to /run/systemd/journal.NAME/socket (the system journal's socket without a namespace; --socket
names any other), with the fields MESSAGE (the line's bytes, exactly, without its newline),
STREAM=STDOUT|STDERR, AGENT_ID, FRAMEWORK_ID, EXECUTOR_ID, CONTAINER_ID, SYSLOG_IDENTIFIER
(default: the command's basename, or `logway-ship` for stdin) and TASK_ID when given. A line
that did not end in a newline (the last one, or one cut at 8 MiB) also has LINE_BREAK=eof or
LINE_BREAK=line-max. Without a command, the shipper ships its own stdin as STREAM=STDOUT.

Exit status: the command's own; if the command was killed by a signal, the shipper kills
itself with the same signal. SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 sent to
the shipper are forwarded to the command, which runs in its own process group (in the
shipper's when stdin is a terminal: the terminal's SIGINT and SIGQUIT then reach it directly
and are not forwarded). 127: the command was not found; 126: it could not be executed; 125:
journald's socket could not be reached at start; 2: bad arguments.

Once the command has exited, what it left in its pipes is still shipped; a process it left
behind that keeps the pipes open is followed while it writes, until 2 s pass without output
or 30 s in all. Should journald go away mid-task for longer than a few seconds, the remaining
lines are written to the shipper's own stdout and stderr instead, with a warning on stderr.

The `logway` CLI calls main(argv) with the arguments after `ship`; `python -m
app.shipper.cli ARGS...` does the same.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence

from app.shipper.fields import TaskFields
from app.shipper.native import SYSTEM_SOCKET, JournalWriter, namespace_socket
from app.shipper.run import run_command, ship_stdin
from app.shipper.signals import exit_status
from app.shipper.sink import FallbackSink, JournalSink, StdioSink

STDIN_IDENTIFIER = "logway-ship"
EXIT_NO_JOURNAL = 125
_NAMESPACE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def main(argv: Sequence[str]) -> int:
    try:
        args = _parser().parse_args(list(argv))
    except SystemExit as exc:  # argparse's way of reporting a usage error (or --help)
        return exc.code if isinstance(exc.code, int) else 2
    command: list[str] = args.command
    if command[:1] == ["--"]:
        command = command[1:]
    fields = TaskFields(
        agent_id=args.agent_id,
        framework_id=args.framework_id,
        executor_id=args.executor_id,
        container_id=args.container_id,
        task_id=args.task_id,
        identifier=args.identifier or _identifier(command),
    )
    path = args.socket or (
        namespace_socket(args.journal_namespace) if args.journal_namespace else SYSTEM_SOCKET
    )
    try:
        writer = JournalWriter(path)
    except OSError as exc:
        print(f"logway ship: cannot reach journald at {path}: {exc.strerror}", file=sys.stderr)
        return EXIT_NO_JOURNAL
    with writer:
        sink = FallbackSink(JournalSink(writer, fields.journal_fields()), StdioSink())
        returncode = run_command(command, sink) if command else ship_stdin(sink)
    return exit_status(returncode)


def _identifier(command: Sequence[str]) -> str:
    return os.path.basename(command[0]) if command else STDIN_IDENTIFIER


def _namespace(value: str) -> str:
    if not _NAMESPACE.fullmatch(value):
        raise argparse.ArgumentTypeError(f"invalid journal namespace: {value!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="logway ship",
        description="Run CMD (or read stdin) and write every output line to journald.",
    )
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--journal-namespace", type=_namespace, metavar="NAME")
    target.add_argument("--socket", metavar="PATH", help="journald's native protocol socket")
    for name in ("agent", "framework", "executor", "container"):
        parser.add_argument(f"--{name}-id", required=True, metavar="ID")
    parser.add_argument("--task-id", metavar="ID")
    parser.add_argument("--identifier", metavar="NAME", help="SYSLOG_IDENTIFIER")
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="-- CMD ARGS")
    return parser


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
