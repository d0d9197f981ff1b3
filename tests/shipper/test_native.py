from __future__ import annotations

import errno
import os
import signal
import socket
import struct
import threading
import time
from pathlib import Path

import pytest

from app.devcluster.journald import JournaldNamespace
from app.shipper.native import (
    JournalUnavailable,
    JournalWriter,
    encode,
    encode_field,
    namespace_socket,
)
from tests.shipper.support import TASK, entries


def binary(name: bytes, value: bytes) -> bytes:
    return name + b"\n" + struct.pack("<Q", len(value)) + value + b"\n"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"hello", b"MESSAGE=hello\n"),
        (b"", b"MESSAGE=\n"),
        (b"a=b", b"MESSAGE=a=b\n"),
        (b"dos\r", b"MESSAGE=dos\r\n"),
        ("ünï ✓".encode(), "MESSAGE=ünï ✓\n".encode()),
        (b"two\nlines", binary(b"MESSAGE", b"two\nlines")),
        (b"\n", binary(b"MESSAGE", b"\n")),
        (b"\xff\xfe bad \xc3", binary(b"MESSAGE", b"\xff\xfe bad \xc3")),
        (b"\xc3\xa9\xc3", binary(b"MESSAGE", b"\xc3\xa9\xc3")),
    ],
)
def test_encode_field(value: bytes, expected: bytes) -> None:
    assert encode_field("MESSAGE", value) == expected


def test_binary_length_is_little_endian_uint64() -> None:
    value = b"x\n" * 300

    assert encode_field("F", value) == b"F\n" + (600).to_bytes(8, "little") + value + b"\n"


def test_encode_keeps_field_order() -> None:
    fields = {"STREAM": b"STDOUT", "MESSAGE": b"a\nb", "TASK_ID": b"t"}

    assert encode(fields) == b"STREAM=STDOUT\n" + binary(b"MESSAGE", b"a\nb") + b"TASK_ID=t\n"


@pytest.mark.parametrize(
    "name", ["", "message", "_PID", "1ABC", "A-B", "A B", "A=B", "Ä", "A" * 65]
)
def test_invalid_field_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="invalid journal field name"):
        encode_field(name, b"x")


def test_longest_valid_field_name() -> None:
    assert encode_field("A" * 64, b"x") == b"A" * 64 + b"=x\n"


def test_namespace_socket() -> None:
    assert str(namespace_socket("node1")) == "/run/systemd/journal.node1/socket"


# Against a real journald.


@pytest.mark.journald
def test_send_writes_one_entry(journal_namespace: JournaldNamespace) -> None:
    with JournalWriter(journal_namespace.socket) as writer:
        writer.send({**TASK, "MESSAGE": b"multi\nline", "EXTRA": b"\xff"})

    [entry] = entries(journal_namespace)
    assert entry["MESSAGE"] == b"multi\nline"
    assert entry["EXTRA"] == b"\xff"


@pytest.mark.journald
def test_entries_too_big_for_a_datagram_go_through_a_memfd(
    journal_namespace: JournaldNamespace,
) -> None:
    size = 64 * 1024
    big = bytes(range(256)) * 4096  # 1 MiB
    # The premise: with this send buffer, the entry does not fit in one datagram.
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
        probe.connect(str(journal_namespace.socket))
        with pytest.raises(OSError, match="Message too long") as excinfo:
            probe.send(big)
        assert excinfo.value.errno == errno.EMSGSIZE

    with JournalWriter(journal_namespace.socket, send_buffer_size=size) as writer:
        writer.send({**TASK, "MESSAGE": big})
        writer.send({**TASK, "MESSAGE": b"small"})

    assert [e["MESSAGE"] for e in entries(journal_namespace)] == [big, b"small"]


@pytest.mark.journald
def test_writer_waits_while_journald_is_stopped(journal_namespace: JournaldNamespace) -> None:
    # A stopped journald fills its queue: sends wait (EAGAIN, then poll) and nothing is lost.
    pid = journal_namespace.pid
    assert pid is not None
    resume = threading.Timer(0.5, os.kill, (pid, signal.SIGCONT))
    with JournalWriter(journal_namespace.socket) as writer:
        os.kill(pid, signal.SIGSTOP)
        started = time.monotonic()
        resume.start()
        try:
            for i in range(2000):
                writer.send({**TASK, "MESSAGE": b"%d" % i})
            waited = time.monotonic() - started
        finally:
            resume.join()
            os.kill(pid, signal.SIGCONT)

    assert waited >= 0.4
    assert [e["MESSAGE"] for e in entries(journal_namespace)] == [b"%d" % i for i in range(2000)]


@pytest.mark.journald
def test_writer_reconnects_when_journald_restarts(journal_namespace: JournaldNamespace) -> None:
    with JournalWriter(journal_namespace.socket) as writer:
        writer.send({**TASK, "MESSAGE": b"first journald"})
        journal_namespace.stop()
        journal_namespace.start()
        writer.send({**TASK, "MESSAGE": b"second journald"})

    assert [e["MESSAGE"] for e in entries(journal_namespace)] == [b"second journald"]


@pytest.mark.journald
def test_writer_gives_up_after_the_reconnect_timeout(journal_namespace: JournaldNamespace) -> None:
    with JournalWriter(journal_namespace.socket, reconnect_timeout=0.3) as writer:
        writer.send({**TASK, "MESSAGE": b"x"})
        journal_namespace.stop()
        started = time.monotonic()
        with pytest.raises(JournalUnavailable):
            writer.send({**TASK, "MESSAGE": b"y"})

    assert 0.3 <= time.monotonic() - started < 2


def test_writer_needs_a_socket_at_start(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        JournalWriter(tmp_path / "missing")
