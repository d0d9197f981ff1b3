"""Where shipped lines go: journald with the task's fields, or this process's own stdio."""

from __future__ import annotations

import enum
import os
import sys
from collections.abc import Callable, Mapping
from typing import Protocol

from app.shipper.lines import Break
from app.shipper.native import (
    JournalUnavailable,
    JournalWriter,
    encode,
    encode_value,
    field_prefix,
)

_MESSAGE = field_prefix("MESSAGE")
# Only lines that did not end in a newline say how they ended (journald's stream transport
# writes the same values to its trusted _LINE_BREAK field, which clients may not set).
_LINE_BREAK = {
    Break.LINE_MAX: encode({"LINE_BREAK": b"line-max"}),
    Break.EOF: encode({"LINE_BREAK": b"eof"}),
}


class Stream(enum.Enum):
    STDOUT = "STDOUT"
    STDERR = "STDERR"


class LineSink(Protocol):
    def write(self, stream: Stream, line: bytes, end: Break) -> None: ...


class JournalSink:
    """One journal entry per line: the task's fields, STREAM, MESSAGE (byte for byte)."""

    def __init__(self, writer: JournalWriter, fields: Mapping[str, bytes]) -> None:
        self._writer = writer
        # Everything but MESSAGE is the same for every line of a stream: encode it once.
        self._heads = {s: encode({**fields, "STREAM": s.value.encode()}) for s in Stream}

    def write(self, stream: Stream, line: bytes, end: Break) -> None:
        entry = self._heads[stream] + encode_value(_MESSAGE, line)
        if end is not Break.NEWLINE:
            entry += _LINE_BREAK[end]
        self._writer.send_entry(entry)


class StdioSink:
    """The lines as they came, on this process's stdout and stderr."""

    def __init__(self, *, stdout: int = 1, stderr: int = 2) -> None:
        self._fds = {Stream.STDOUT: stdout, Stream.STDERR: stderr}

    def write(self, stream: Stream, line: bytes, end: Break) -> None:
        data = line + b"\n" if end is Break.NEWLINE else line
        view = memoryview(data)
        while view:
            view = view[os.write(self._fds[stream], view) :]


class FallbackSink:
    """journald first; once it is gone for good, every later line goes to `fallback`.

    A task's output must land somewhere: losing journald mid-task (stopped, not restarting)
    must neither kill the task nor silently discard what it writes.
    """

    def __init__(
        self,
        primary: LineSink,
        fallback: LineSink,
        *,
        on_fallback: Callable[[JournalUnavailable], None] | None = None,
    ) -> None:
        self._sink = primary
        self._fallback = fallback
        self._on_fallback = on_fallback or _warn

    def write(self, stream: Stream, line: bytes, end: Break) -> None:
        try:
            self._sink.write(stream, line, end)
        except JournalUnavailable as exc:
            self._sink = self._fallback
            self._on_fallback(exc)
            self._sink.write(stream, line, end)


def _warn(exc: JournalUnavailable) -> None:
    print(f"logway ship: {exc}; writing the task's output to stdout/stderr", file=sys.stderr)
