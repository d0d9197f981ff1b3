from __future__ import annotations

import os

import pytest

from app.devcluster.journald import JournaldNamespace
from app.shipper.lines import Break
from app.shipper.native import JournalUnavailable, JournalWriter
from app.shipper.sink import FallbackSink, JournalSink, StdioSink, Stream
from tests.shipper.support import TASK, entries


class Recorder:
    def __init__(self) -> None:
        self.lines: list[tuple[Stream, bytes, Break]] = []

    def write(self, stream: Stream, line: bytes, end: Break) -> None:
        self.lines.append((stream, line, end))


class GoneAfter(Recorder):
    def __init__(self, accepted: int) -> None:
        super().__init__()
        self.accepted = accepted

    def write(self, stream: Stream, line: bytes, end: Break) -> None:
        if len(self.lines) == self.accepted:
            raise JournalUnavailable(111, "gone")
        super().write(stream, line, end)


def test_fallback_takes_over_from_the_first_failed_line_for_good() -> None:
    primary, fallback = GoneAfter(accepted=1), Recorder()
    warnings: list[JournalUnavailable] = []
    sink = FallbackSink(primary, fallback, on_fallback=warnings.append)

    for n in (b"1", b"2", b"3"):
        sink.write(Stream.STDOUT, n, Break.NEWLINE)

    assert [line for _, line, _ in primary.lines] == [b"1"]
    assert [line for _, line, _ in fallback.lines] == [b"2", b"3"]
    assert len(warnings) == 1


@pytest.mark.parametrize(
    ("end", "written"),
    [(Break.NEWLINE, b"line\n"), (Break.EOF, b"line"), (Break.LINE_MAX, b"line")],
)
def test_stdio_sink_restores_the_newline_only_where_there_was_one(
    end: Break, written: bytes
) -> None:
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        sink = StdioSink(stdout=out_w, stderr=err_w)
        sink.write(Stream.STDOUT, b"line", end)
        sink.write(Stream.STDERR, b"err", Break.NEWLINE)
        assert os.read(out_r, 100) == written
        assert os.read(err_r, 100) == b"err\n"
    finally:
        for fd in (out_r, out_w, err_r, err_w):
            os.close(fd)


@pytest.mark.journald
def test_lines_go_to_stdio_once_journald_is_gone(journal_namespace: JournaldNamespace) -> None:
    out_r, out_w = os.pipe()
    warnings: list[JournalUnavailable] = []
    try:
        with JournalWriter(journal_namespace.socket, reconnect_timeout=0.2) as writer:
            sink = FallbackSink(
                JournalSink(writer, TASK),
                StdioSink(stdout=out_w, stderr=out_w),
                on_fallback=warnings.append,
            )
            sink.write(Stream.STDOUT, b"to journald", Break.NEWLINE)
            journal_namespace.sync()
            found = entries(journal_namespace)
            journal_namespace.stop()
            sink.write(Stream.STDOUT, b"to stdout", Break.NEWLINE)
            sink.write(Stream.STDERR, b"partial", Break.EOF)
        assert os.read(out_r, 100) == b"to stdout\npartial"
    finally:
        os.close(out_r)
        os.close(out_w)
    assert [e["MESSAGE"] for e in found] == [b"to journald"]
    assert len(warnings) == 1


@pytest.mark.journald
def test_journal_sink_marks_lines_that_did_not_end_in_a_newline(
    journal_namespace: JournaldNamespace,
) -> None:
    with JournalWriter(journal_namespace.socket) as writer:
        sink = JournalSink(writer, TASK)
        sink.write(Stream.STDERR, b"cut", Break.LINE_MAX)
        sink.write(Stream.STDERR, b"rest", Break.NEWLINE)
        sink.write(Stream.STDOUT, b"last", Break.EOF)

    assert [
        (e["STREAM"], e["MESSAGE"], e.get("LINE_BREAK")) for e in entries(journal_namespace)
    ] == [
        (b"STDERR", b"cut", b"line-max"),
        (b"STDERR", b"rest", None),
        (b"STDOUT", b"last", b"eof"),
    ]
