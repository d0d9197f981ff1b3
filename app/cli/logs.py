"""`logway logs`: read or follow a node's journal, a systemd unit's, a task's output, or
every task of a role or app merged across agents, through the gateway.

    logway logs agent AGENT_ID | master | leader | task NAME_OR_ID [stdout|stderr]
                | role ROLE | app APP_ID
        [-f] [-n N|all] [--since WHEN] [--filter FIELD:VALUE]... [--unit UNIT]
        [--with-scheduler] (role, app)
        [-o text|json|raw] [--url URL]

Options go before or after the source. Exit status: 0, 1 for an error (the gateway
unreachable, not found, ambiguous, any other error answer), 2 for bad usage (the options, or
a 400 from the gateway about them), 3 when the gateway denies the caller (401/403). Ctrl-C
ends a follow with 0.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import httpx

from app.cli.credentials import Credentials
from app.cli.http import EXIT_ERROR, EXIT_OK, CliError
from app.cli.logs_output import OUTPUTS, BadEntry, Printer, Style, formatter_for, highlighter
from app.cli.logs_read import Target, follow, last_cursor, read_count, read_range
from app.cli.logs_source import (
    DEFAULT_LINES,
    SOURCE_KINDS,
    Source,
    SourceArgs,
    Window,
    kind_named,
    parse_filter,
    parse_lines,
    parse_since,
    unit_name,
    usage,
)
from app.proxy.sse import SseError

EPILOG = """\
examples:
  logway logs task web.prod                 last 10 lines of the task's stdout
  logway logs task web.prod stderr -f       follow its stderr
  logway logs leader --unit dcos-mesos-master -n 50
  logway logs agent <id> --since 10m --filter STREAM:STDERR -o json
  logway logs master --since 2026-01-02T15:04:05Z -n all
  logway logs app /prod -f                  every /prod task on every agent, merged
  logway logs app /prod --with-scheduler    … and Marathon's lines about /prod, in time order
  logway logs role dev -n 50 -o json

-n defaults to 10 (with --since: every line since then); -n 0 -f prints only new lines.
--unit reads one systemd unit's lines (UNIT or _SYSTEMD_UNIT; `.service` is added when the
name has no unit suffix). The gateway URL: --url, else LOGWAY_URL, else `logway login`'s;
the token: LOGWAY_TOKEN, else `logway login`'s (sent only to the URL it was issued by).
-o text: journalctl's short format (a task's own lines as written); json: each entry as the
gateway sends it (a followed task's entries are its file events); raw: messages only.
On a terminal, text has colours (not with NO_COLOR) and a header per source.
exit status: 0 ok, 1 error, 2 bad usage (also a 400 from the gateway), 3 denied."""

# (option strings, add_argument keywords); the defaults apply when an option is not given
# anywhere, and the `after` copies (given after the source) win over those given before.
_OPTIONS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (("-f", "--follow"), {"action": "store_true", "help": "print new lines as they come"}),
    (
        ("-n", "--lines"),
        {"metavar": "N", "help": f"the last N lines, or `all` (default {DEFAULT_LINES})"},
    ),
    (("--since",), {"metavar": "WHEN", "help": "RFC 3339 time, or a time ago: 30s, 10m, 2h, 1d"}),
    (
        ("--filter",),
        {
            "action": "append",
            "metavar": "FIELD:VALUE",
            "help": "only entries whose journal FIELD is VALUE (repeatable: one field's "
            "values are ORed, fields ANDed)",
        },
    ),
    (
        ("--grep",),
        {
            "action": "append",
            "metavar": "RE",
            "help": "only entries whose message matches RE (RE2 syntax, `(?i)` ignores case; "
            "repeatable: any matches), searched by the server; -n counts matches",
        },
    ),
    (
        ("-C", "--context"),
        {
            "metavar": "N",
            "type": int,
            "help": "with --grep: N entries of the same source "
            "around each match (`--` between groups)",
        },
    ),
    (("--count",), {"action": "store_true", "help": "print how many entries (matches) only"}),
    (("--unit",), {"metavar": "UNIT", "help": "one systemd unit's lines (agent, master, leader)"}),
    (
        ("--with-scheduler",),
        {
            "action": "store_true",
            "dest": "with_scheduler",
            "help": "role, app: also Marathon's lines naming the app (or the role's apps), "
            "merged in time order",
        },
    ),
    (
        ("-o", "--output"),
        {"choices": OUTPUTS, "default": "text", "help": "text (default), json or raw"},
    ),
    (("--url",), {"metavar": "URL", "help": "the gateway (default: LOGWAY_URL, then login's)"}),
)
_AFTER = "_after_"


def add_parser(commands: Any) -> None:
    p: argparse.ArgumentParser = commands.add_parser(
        "logs",
        help="read or follow logs through the gateway",
        description="Read or follow a node's, a systemd unit's, a task's, a role's or an "
        "app's logs.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_options(p, after=False)
    sources = p.add_subparsers(dest="source", required=True, metavar="SOURCE")
    for kind in SOURCE_KINDS:
        sp = sources.add_parser(kind.name, help=kind.help, description=kind.help)
        for positional in kind.positionals:
            if positional.default is None:
                sp.add_argument(
                    positional.name, metavar=positional.name.upper(), help=positional.help
                )
            else:
                sp.add_argument(
                    positional.name,
                    nargs="?",
                    default=positional.default,
                    choices=positional.choices,
                    help=positional.help,
                )
        _add_options(sp, after=True)
    p.set_defaults(run=run)


def _add_options(parser: argparse.ArgumentParser, *, after: bool) -> None:
    for flags, options in _OPTIONS:
        dest = options.get("dest", flags[-1].lstrip("-"))
        if after:
            # A subparser's defaults would overwrite what was given before the source.
            options = {**options, "default": argparse.SUPPRESS, "dest": _AFTER + dest}
        parser.add_argument(*flags, **options)


def _option(args: argparse.Namespace, name: str) -> Any:
    before = getattr(args, name, None)
    after = getattr(args, _AFTER + name, None)
    if name in ("filter", "grep"):
        return [*(before or ()), *(after or ())]
    if name in ("follow", "count", "with_scheduler"):
        return bool(before or after)
    return after if after is not None else before


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except KeyboardInterrupt:
        return EXIT_OK
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly, and keep the interpreter's final
        # flush from complaining about the pipe.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except CliError as exc:
        return _fail(str(exc), exc.code)
    except httpx.TransportError as exc:
        return _fail(f"cannot reach the gateway: {exc or type(exc).__name__}", EXIT_ERROR)
    except (BadEntry, SseError) as exc:
        return _fail(f"unexpected answer from the gateway: {exc}", EXIT_ERROR)


def _fail(message: str, code: int) -> int:
    print(f"logway logs: {message}", file=sys.stderr)
    return code


@dataclass(frozen=True)
class Plan:
    """What the command line asks for, checked: what to read, how, from which gateway."""

    source: Source
    window: Window
    follow: bool
    output: str
    target: Target
    count: bool = False


def plan(args: argparse.Namespace, env: Mapping[str, str]) -> Plan:
    """The options (before or after the source) → a `Plan`; bad usage is a `CliError` 2."""
    kind = kind_named(args.source)
    unit = _option(args, "unit")
    values = {p.name: getattr(args, p.name) for p in kind.positionals}
    source = kind.build(
        SourceArgs(
            values,
            unit_name(unit) if unit is not None else None,
            with_scheduler=_option(args, "with_scheduler"),
        )
    )
    since_raw, lines_raw = _option(args, "since"), _option(args, "lines")
    since = parse_since(since_raw) if since_raw is not None else None
    if lines_raw is not None:
        lines = parse_lines(lines_raw)
    else:  # like journalctl: --since alone means everything since then; a count, all
        lines = None if since is not None or _option(args, "count") else DEFAULT_LINES
    filters = tuple(parse_filter(raw) for raw in _option(args, "filter"))
    grep = tuple(_option(args, "grep"))
    context = _option(args, "context") or 0
    if context and not grep:
        raise usage("-C/--context needs --grep")
    if context < 0:
        raise usage("-C/--context must be 0 or more")
    count = bool(_option(args, "count"))
    if count and _option(args, "follow"):
        raise usage("--count cannot follow")
    window = Window(lines=lines, since=since, filters=filters, grep=grep, context=context)
    if count and source.route.count(window) is None:
        raise usage(f"--count: {source.label} has no count route (a unit's journal has none)")
    return Plan(
        source=source,
        window=window,
        follow=_option(args, "follow"),
        output=_option(args, "output"),
        target=Target.resolve(_option(args, "url"), env, Credentials.load()),
        count=count,
    )


def _run(args: argparse.Namespace) -> int:
    p = plan(args, os.environ)
    source, window = p.source, p.window
    style = Style.for_terminal(p.output, sys.stdout.isatty(), os.environ)
    formatter = formatter_for(
        p.output,
        style,
        task_file=source.task_file,
        per_task=source.merged,
        highlight=highlighter(window.grep),
    )
    printer = Printer(sys.stdout.buffer, formatter, style, source.header)
    with p.target.client() as client:
        counted = source.route.count(window) if p.count else None
        if counted is not None:
            print(read_count(client, counted))
            return EXIT_OK
        if window.lines == 0:
            # Nothing old: start after the newest entry (this also checks access).
            window = replace(window, cursor=last_cursor(client, source, window))
            if not p.follow:
                printer.finish()
                return EXIT_OK
        if p.follow:
            follow(client, source, window, printer.entries, note=_note)
        else:
            read_range(client, source.route.range(window), printer.entries)
            printer.finish()
    return EXIT_OK


def _note(message: str) -> None:
    print(f"logway logs: {message}", file=sys.stderr, flush=True)
