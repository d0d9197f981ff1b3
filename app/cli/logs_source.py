"""What `logway logs` reads: a source (a label and the gateway routes that serve it) and the
window within it (last N lines, since when, which fields), as query parameters.

Two dialects of the same node reader (reference/dcos-logs-api.md §1.3, §2.2): v1 has separate
`range/` and `stream/` URLs and counts back with `skip_prev`; v2 (a systemd unit's journal, a
task's stdout/stderr) has one URL whose Accept header decides between range and follow, and
counts back with a negative `skip`. Both take `cursor`, `since` and `filter`.

A kind of source is one `SourceKind` in `SOURCE_KINDS`: its positional arguments and a
function building its `Source`. The merged `role` and `app` reads (every agent's lines of a
Mesos role's or a Marathon app's tasks, in time order, resumable by a composite cursor) are
v1 routes like a node's.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol
from urllib.parse import quote

from app.cli.http import EXIT_USAGE, CliError

Params = list[tuple[str, str]]
Fields = Mapping[str, object]

DEFAULT_LINES = 10  # as `journalctl` and `dcos node log`/`dcos task log`
TASK_FILES = ("stdout", "stderr")
MASTER_LOGS = "/system/v1/logs"
LEADER_LOGS = "/system/v1/leader/mesos/logs"
JSON = "application/json"
SSE = "text/event-stream"

# The node reader's rule for filter fields (app/journal/params.py), checked here so that a bad
# --filter is a usage error (exit 2) before anything is sent.
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_RELATIVE = re.compile(r"(?:(\d+)([smhdw]))+")
_RELATIVE_PART = re.compile(r"(\d+)([smhdw])")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# systemd's unit types: a --unit without one of these gets `.service`, as `dcos node log
# --component` does.
_UNIT_SUFFIXES = (
    ".service",
    ".socket",
    ".target",
    ".device",
    ".mount",
    ".automount",
    ".swap",
    ".timer",
    ".path",
    ".slice",
    ".scope",
)


def usage(message: str) -> CliError:
    return CliError(message, EXIT_USAGE)


# --- The window: which entries of a source -------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Window:
    """`lines`: the last N entries (None: no count, from `since` or the head). `since`:
    realtime µs. `cursor`: start just after this entry (the `-n 0 --follow` anchor)."""

    lines: int | None = DEFAULT_LINES
    since: int | None = None
    filters: tuple[tuple[str, str], ...] = ()
    cursor: str | None = None
    grep: tuple[str, ...] = ()  # RE2 patterns, searched by the server (any matches)
    context: int = 0

    def common(self) -> Params:
        params: Params = []
        if self.cursor is not None:
            params.append(("cursor", self.cursor))
        if self.since is not None:
            params.append(("since", str(self.since)))
        params += [("filter", f"{name}:{value}") for name, value in self.filters]
        params += [("grep", pattern) for pattern in self.grep]
        if self.context:
            params.append(("context", str(self.context)))
        return params


def parse_lines(raw: str) -> int | None:
    """`-n N` (N ≥ 0) or `-n all` (None: no count)."""
    if raw == "all":
        return None
    if not raw.isdigit():
        raise usage(f"--lines {raw!r}: expected a number of lines (0 or more) or `all`")
    return int(raw)


def parse_since(raw: str, *, now: float | None = None) -> int:
    """`--since`: RFC 3339 (a time without a zone is local time), or a time ago such as
    `90s`, `10m`, `2h`, `1d`, `1h30m` → realtime µs (what the node reader's `since` takes)."""
    value = raw.strip()
    if _RELATIVE.fullmatch(value):
        ago = sum(int(n) * _SECONDS[unit] for n, unit in _RELATIVE_PART.findall(value))
        return int(((time.time() if now is None else now) - ago) * 1_000_000)
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise usage(
            f"--since {raw!r}: expected RFC 3339 (2026-01-02T15:04:05Z) "
            "or a time ago (30s, 10m, 2h, 1d)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.astimezone()  # the local time zone
    return (parsed - _EPOCH) // timedelta(microseconds=1)  # exact, unlike float seconds


def parse_filter(raw: str) -> tuple[str, str]:
    """`--filter FIELD:value`: a journal field (upper-cased, as the node reader does) and the
    value, which may itself hold `:`."""
    name, sep, value = raw.partition(":")
    if not sep or not _FIELD.fullmatch(name):
        raise usage(f"--filter {raw!r}: expected FIELD:value, FIELD a journal field name")
    return name.upper(), value


def unit_name(raw: str) -> str:
    if not raw or "/" in raw:
        raise usage(f"--unit {raw!r}: expected a systemd unit name")
    return raw if raw.endswith(_UNIT_SUFFIXES) else raw + ".service"


# --- Routes ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    path: str
    params: tuple[tuple[str, str], ...]


class Route(Protocol):
    @property
    def newest_accept(self) -> str:
        """The format in which a range's newest entry tells where to follow on from."""
        ...

    def range(self, window: Window) -> Request: ...

    def stream(self, window: Window) -> Request: ...

    def count(self, window: Window) -> Request | None:
        """The window's size (with grep: its matches), or None where there is no count."""
        ...


@dataclass(frozen=True)
class V1Route:
    """`<base>/range/` and `<base>/stream/`; last N is `skip_prev=N`. A merged read's
    entries carry node cursors, and only its SSE ids (on ranges too) the composite cursor
    it resumes from; a node's v1 range sends SSE without ids, its entries with cursors."""

    base: str  # e.g. /system/v1/logs/v1
    newest_accept: str = SSE
    extra: tuple[tuple[str, str], ...] = ()  # e.g. include=scheduler

    def range(self, window: Window) -> Request:
        return Request(f"{self.base}/range/", tuple(self._params(window)))

    def stream(self, window: Window) -> Request:
        return Request(f"{self.base}/stream/", tuple(self._params(window)))

    def count(self, window: Window) -> Request | None:
        return Request(f"{self.base}/count/", tuple(self._params(replace(window, context=0))))

    def _params(self, window: Window) -> Params:
        # skip_prev=0 would mean "from the head" on a stream: only send a count.
        skip = [("skip_prev", str(window.lines))] if window.lines else []
        return skip + window.common() + list(self.extra)


@dataclass(frozen=True)
class V2Route:
    """One URL for range and follow (the Accept header decides); last N is `skip=-N`."""

    path: str
    newest_accept: str = JSON  # SSE would follow
    count_path: str | None = None  # a task file's `…/count` (a unit's journal has none)

    def range(self, window: Window) -> Request:
        return Request(self.path, tuple(self._params(window)))

    def stream(self, window: Window) -> Request:
        return Request(self.path, tuple(self._params(window)))

    def count(self, window: Window) -> Request | None:
        if self.count_path is None:
            return None
        return Request(self.count_path, tuple(self._params(replace(window, context=0))))

    @staticmethod
    def _params(window: Window) -> Params:
        skip = [("skip", f"-{window.lines}")] if window.lines else []
        return skip + window.common()


# --- Sources ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Source:
    """`label` heads its output on a terminal; `task_file` is set for a task's stdout/stderr,
    whose text output is the task's own lines (no journal prefix: they carry no time when
    followed)."""

    label: str
    route: Route
    task_file: str | None = None
    merged: bool = False  # several tasks in one read: on a terminal, a prefix per task

    def header(self, first: Fields | None) -> str:
        """The one-line header; a task's names the agent its first line came from."""
        label = self.label
        if first is not None and self.task_file is not None:
            task_id, agent = first.get("TASK_ID"), first.get("AGENT_ID")
            if isinstance(task_id, str) and task_id and task_id not in label:
                label += f" ({task_id})"
            if isinstance(agent, str) and agent:
                label += f" on agent {agent}"
        return f"==> {label} <=="


@dataclass(frozen=True)
class SourceArgs:
    """A source's positional arguments by name, `--unit` (already normalised) and
    `--with-scheduler`."""

    values: Mapping[str, str]
    unit: str | None = None
    with_scheduler: bool = False


@dataclass(frozen=True)
class Positional:
    name: str
    help: str
    choices: tuple[str, ...] | None = None
    default: str | None = None  # set: optional


@dataclass(frozen=True)
class SourceKind:
    name: str
    help: str
    positionals: tuple[Positional, ...]
    build: Callable[[SourceArgs], Source]


def _seg(value: str) -> str:
    return quote(value, safe="")


def node_source(label: str, logs: str, unit: str | None) -> Source:
    """A node's whole journal (`<logs>/v1/…`), or one systemd unit's (`<logs>/v2/component/…`:
    `UNIT` or `_SYSTEMD_UNIT`, as journalctl -u would find both the unit's lines and systemd's
    about it)."""
    if unit is None:
        return Source(label=label, route=V1Route(f"{logs}/v1"))
    route = V2Route(f"{logs}/v2/component/{_seg(unit)}")
    return Source(label=f"{label}, unit {unit}", route=route)


def _agent(args: SourceArgs) -> Source:
    _no_scheduler(args, "an agent")
    agent = args.values["agent_id"]
    return node_source(f"agent {agent}", f"/system/v1/agent/{_seg(agent)}/logs", args.unit)


def _master(args: SourceArgs) -> Source:
    _no_scheduler(args, "the master")
    return node_source("master", MASTER_LOGS, args.unit)


def _leader(args: SourceArgs) -> Source:
    _no_scheduler(args, "the leader")
    return node_source("leader", LEADER_LOGS, args.unit)


def _no_unit(args: SourceArgs, what: str) -> None:
    if args.unit is not None:
        raise usage(f"--unit applies to agent, master and leader logs, not to {what}")


def _no_scheduler(args: SourceArgs, what: str) -> None:
    if args.with_scheduler:
        raise usage(f"--with-scheduler applies to role and app logs, not to {what}")


def _merged_extra(args: SourceArgs) -> tuple[tuple[str, str], ...]:
    # Marathon's lines naming the app (or the role's apps), merged in (issue 18).
    return (("include", "scheduler"),) if args.with_scheduler else ()


def _role(args: SourceArgs) -> Source:
    _no_unit(args, "a role")
    role = args.values["role"]
    route = V1Route(f"{MASTER_LOGS}/v1/role/{_seg(role)}", extra=_merged_extra(args))
    label = f"role {role}" + (" with Marathon's lines" if args.with_scheduler else "")
    return Source(label=label, route=route, merged=True)


def _app(args: SourceArgs) -> Source:
    _no_unit(args, "an app")
    # Marathon app ids are absolute; `prod/web` means `/prod/web`. The gateway takes the id's
    # slashes as path separators and refuses ids that are not canonical.
    app_id = "/" + args.values["app_id"].strip("/")
    route = V1Route(f"{MASTER_LOGS}/v1/app{quote(app_id, safe='/')}", extra=_merged_extra(args))
    label = f"app {app_id}" + (" with Marathon's lines" if args.with_scheduler else "")
    return Source(label=label, route=route, merged=True)


def _task(args: SourceArgs) -> Source:
    _no_unit(args, "a task")
    _no_scheduler(args, "a task")
    task, file = args.values["task"], args.values["file"]
    # The gateway finds the task by id or name (409 when several match).
    path = f"{MASTER_LOGS}/v2/task/{_seg(task)}/file/{file}"
    route = V2Route(path, count_path=f"{path}/count")
    return Source(label=f"task {task} {file}", route=route, task_file=file)


SOURCE_KINDS: tuple[SourceKind, ...] = (
    SourceKind(
        "agent",
        "an agent's journal",
        (Positional("agent_id", "the agent's Mesos id"),),
        _agent,
    ),
    SourceKind("master", "the journal of the master the gateway runs on", (), _master),
    SourceKind("leader", "the leading Mesos master's journal", (), _leader),
    SourceKind(
        "task",
        "a task's stdout or stderr",
        (
            Positional("task", "the task's id, a part of it, or its name"),
            Positional("file", "stdout (default) or stderr", TASK_FILES, "stdout"),
        ),
        _task,
    ),
    SourceKind(
        "role",
        "every task of a Mesos role, all agents merged in time order",
        (Positional("role", "the Mesos role, e.g. prod"),),
        _role,
    ),
    SourceKind(
        "app",
        "every task of a Marathon app or group, all agents merged in time order",
        (Positional("app_id", "the app or group id, e.g. /prod/web or /prod"),),
        _app,
    ),
)


def kind_named(name: str, kinds: Sequence[SourceKind] = SOURCE_KINDS) -> SourceKind:
    for kind in kinds:
        if kind.name == name:
            return kind
    raise usage(f"unknown source {name!r}")
