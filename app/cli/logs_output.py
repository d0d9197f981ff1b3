"""How `logway logs` prints entries: `text` (journalctl's short format; a task's own lines),
`json` (the gateway's object, byte for byte, one per line) or `raw` (the message bytes).

On a terminal, text output gets colours and a header per source, and a merged role or app
read a short prefix per task in the task's own colour; piped, or with `NO_COLOR` set
(https://no-color.org), it stays plain (the prefix stays with `NO_COLOR`). Control characters
in a message are escaped on a terminal, so a log line cannot move the cursor or retitle the
window.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import BinaryIO, Protocol

import orjson
import re2  # type: ignore[import-untyped]

from app.cli.logs_source import Fields

OUTPUTS = ("text", "json", "raw")

DIM, BOLD, RED, YELLOW, RESET = "\x1b[2m", "\x1b[1m", "\x1b[31m", "\x1b[33m", "\x1b[0m"
MATCH = "\x1b[1;31m"  # a --grep match within its line, as grep --color
SEPARATOR = b"--\n"  # between groups of matches and their context, as grep -C
# One per task of a merged read, in the order tasks first appear (red and yellow mean stderr
# and warnings, so not here): green, blue, magenta, cyan and their bright forms.
TASK_COLOURS = ("\x1b[32m", "\x1b[34m", "\x1b[35m", "\x1b[36m", "\x1b[92m", "\x1b[94m")
TASK_TAG = 6  # characters of the container id that tell a task's instances apart
PRIORITY_ERROR = 3  # syslog err: this and below (crit, alert, emerg) in red
PRIORITY_WARNING = 4
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # not \t, \n


class BadEntry(ValueError):
    """The gateway sent something that is not a log entry."""


@dataclass(frozen=True)
class LogEntry:
    raw: bytes  # the JSON object as received
    fields: Fields
    realtime: int | None  # µs since the epoch, when the gateway sent it
    match: bool | None = None  # a search's match (True) or context (False)
    gap: bool = False  # a search's new group of lines starts here

    @classmethod
    def parse(cls, raw: bytes) -> LogEntry:
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise BadEntry(f"not JSON: {raw[:80]!r}") from exc
        if not isinstance(obj, dict) or not isinstance(obj.get("fields"), dict):
            raise BadEntry(f"not a log entry: {raw[:80]!r}")
        realtime = obj.get("realtime_timestamp")
        match = obj.get("match")
        return cls(
            raw,
            obj["fields"],
            realtime if isinstance(realtime, int) else None,
            match if isinstance(match, bool) else None,
            obj.get("gap") is True,
        )

    def field(self, name: str) -> str | None:
        value = self.fields.get(name)
        if isinstance(value, list):  # not UTF-8: the byte values
            return bytes(value).decode("utf-8", "replace")
        return value if isinstance(value, str) else None

    @property
    def message(self) -> bytes | None:
        value = self.fields.get("MESSAGE")
        if isinstance(value, str):
            return value.encode()
        if isinstance(value, list):
            return bytes(value)
        return None

    @property
    def priority(self) -> int | None:
        value = self.field("PRIORITY")
        return int(value) if value is not None and value.isdigit() else None


@dataclass(frozen=True)
class Style:
    colour: bool = False
    header: bool = False
    escape: bool = False  # control characters shown as \xNN

    @classmethod
    def for_terminal(cls, output: str, isatty: bool, env: Mapping[str, str]) -> Style:
        if output != "text" or not isatty:
            return cls()
        plain = bool(env.get("NO_COLOR")) or env.get("TERM") == "dumb"
        return cls(colour=not plain, header=True, escape=True)

    def paint(self, code: str, text: str) -> str:
        return f"{code}{text}{RESET}" if self.colour and text else text


class Formatter(Protocol):
    def format(self, entry: LogEntry) -> bytes | None: ...


class JsonFormatter:
    def format(self, entry: LogEntry) -> bytes | None:
        return entry.raw + b"\n"


class RawFormatter:
    def format(self, entry: LogEntry) -> bytes | None:
        message = entry.message
        return None if message is None else message + b"\n"


class TextFormatter:
    """`Mon DD HH:MM:SS host ident[pid]: message` in local time, as `journalctl -o short`;
    a task's stdout/stderr (`task_file`) as the task wrote it. No MESSAGE, no line."""

    def __init__(
        self,
        style: Style,
        *,
        task_file: str | None = None,
        per_task: bool = False,
        highlight: Callable[[str], str] | None = None,
    ) -> None:
        self._style = style
        self._highlight = highlight if style.colour else None
        self._task_file = task_file
        # A merged read on a terminal: each line starts with its task's short name in the
        # task's own colour (`web.prod:2056a8 `), so interleaved tasks can be told apart.
        self._per_task = per_task and style.header
        self._task_colours: dict[str, str] = {}

    def format(self, entry: LogEntry) -> bytes | None:
        message = entry.message
        if message is None:
            return None
        text = message.decode("utf-8", "replace")
        if self._style.escape:
            text = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)
        stderr = self._task_file == "stderr" or entry.field("STREAM") == "STDERR"
        priority = entry.priority
        if entry.match and self._highlight is not None:
            text = self._highlight(text)
        elif stderr or (priority is not None and priority <= PRIORITY_ERROR):
            text = self._style.paint(RED, text)
        elif priority == PRIORITY_WARNING:
            text = self._style.paint(YELLOW, text)
        gap = SEPARATOR.decode() if entry.gap else ""
        if self._task_file is not None:
            return f"{gap}{text}\n".encode()
        return f"{gap}{self._task(entry)}{self._prefix(entry)}{text}\n".encode()

    def _task(self, entry: LogEntry) -> str:
        """`name:container` of a merged read's line, in its task's colour; "" otherwise."""
        if not self._per_task:
            return ""
        container = entry.field("CONTAINER_ID") or ""
        name = entry.field("SYSLOG_IDENTIFIER") or entry.field("TASK_ID") or "?"
        # A nested container is `parent.child`: the child tells a pod's tasks apart.
        tag = container.rsplit(".", 1)[-1][:TASK_TAG]
        colour = self._task_colours.setdefault(
            container, TASK_COLOURS[len(self._task_colours) % len(TASK_COLOURS)]
        )
        return self._style.paint(colour, f"{name}:{tag}" if tag else name) + " "

    def _prefix(self, entry: LogEntry) -> str:
        parts = []
        if entry.realtime is not None:
            stamp = time.strftime("%b %d %H:%M:%S", time.localtime(entry.realtime / 1_000_000))
            parts.append(self._style.paint(DIM, stamp))
        host = entry.field("_HOSTNAME")
        if host:
            parts.append(host)
        ident = entry.field("SYSLOG_IDENTIFIER") or entry.field("_COMM")
        if ident:
            pid = entry.field("_PID") or entry.field("SYSLOG_PID")
            parts.append(f"{ident}[{pid}]:" if pid else f"{ident}:")
        return " ".join(parts) + " " if parts else ""


def highlighter(patterns: tuple[str, ...]) -> Callable[[str], str] | None:
    """Paints what `patterns` match in a line (RE2 here too: linear time on any line)."""
    if not patterns:
        return None
    try:
        program = re2.compile("|".join(f"(?:{p})" for p in patterns))
    except re2.error:
        return None  # the server refuses it with a clear 400

    def paint(text: str) -> str:
        out, pos = [], 0
        for m in program.finditer(text):
            if m.end() > m.start():
                out += [text[pos : m.start()], MATCH, m.group(), RESET]
                pos = m.end()
        return "".join(out) + text[pos:]

    return paint


def formatter_for(
    output: str,
    style: Style,
    *,
    task_file: str | None,
    per_task: bool = False,
    highlight: Callable[[str], str] | None = None,
) -> Formatter:
    if output == "json":
        return JsonFormatter()
    if output == "raw":
        return RawFormatter()
    return TextFormatter(style, task_file=task_file, per_task=per_task, highlight=highlight)


class Printer:
    """Writes formatted entries to `out`, flushing after each batch (a follower's reader sees
    a line as soon as it came); the header, when the style has one, before the first."""

    def __init__(
        self,
        out: BinaryIO,
        formatter: Formatter,
        style: Style,
        header: Callable[[Fields | None], str],
    ) -> None:
        self._out = out
        self._formatter = formatter
        self._style = style
        self._header = header
        self._headed = False
        self.count = 0  # entries received

    def entries(self, raws: list[bytes]) -> None:
        chunks = []
        for raw in raws:
            entry = LogEntry.parse(raw)
            self.count += 1
            if not self._headed:
                chunks.append(self._head(entry.fields))
            line = self._formatter.format(entry)
            if line is not None:
                chunks.append(line)
        if chunks:
            self._out.write(b"".join(chunks))
            self._out.flush()

    def finish(self) -> None:
        """The end of a range: the header even if nothing came."""
        if not self._headed:
            head = self._head(None)
            if head:
                self._out.write(head)
                self._out.flush()

    def _head(self, first: Fields | None) -> bytes:
        self._headed = True
        if not self._style.header:
            return b""
        return (self._style.paint(BOLD, self._header(first)) + "\n").encode()
