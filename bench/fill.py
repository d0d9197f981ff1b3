"""Fill a journald namespace fast: native-protocol datagrams straight to its socket.

The shipper would do the same job through a task's pipes; for a benchmark we only need
task-like entries in volume, so we skip the pipes and write `FIELD=value\\n` datagrams
(https://systemd.io/JOURNAL_NATIVE_PROTOCOL/).
"""

from __future__ import annotations

import errno
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from threading import Event

TASKS = 8
RETRY_SLEEP = 0.0005  # journald's receive queue is full: give it a moment
_BUSY = (errno.EAGAIN, errno.ENOBUFS)
_FILLER = "the quick brown fox jumps over the lazy dog while the cluster hums along"


def task_prefix(task: int) -> bytes:
    """The fields every line of one fake task carries, minus MESSAGE and STREAM."""
    return (
        f"AGENT_ID=bench-agent-{task % 3}-S0\n"
        f"FRAMEWORK_ID=bench-framework-0000\n"
        f"EXECUTOR_ID=bench-executor-{task}\n"
        f"CONTAINER_ID=bench-container-{task:04d}-{'c' * 24}\n"
        f"SYSLOG_IDENTIFIER=bench-task-{task}\n"
    ).encode()


def task_datagram(i: int, prefixes: list[bytes]) -> bytes:
    """Entry `i`: a 60-100 byte MESSAGE, alternating streams, round-robin tasks."""
    message = f"bench line {i:08d} {_FILLER[: 40 + i % 41]}"
    stream = b"STDOUT" if i % 2 == 0 else b"STDERR"
    return b"%bSTREAM=%b\nMESSAGE=%b\n" % (prefixes[i % TASKS], stream, message.encode())


def datagram(fields: Mapping[str, str]) -> bytes:
    return "".join(f"{k}={v}\n" for k, v in fields.items()).encode()


class NativeWriter:
    """A non-blocking datagram socket connected to journald's native socket."""

    def __init__(self, path: Path) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.connect(str(path))
        self._sock.setblocking(False)

    def send(self, payload: bytes) -> None:
        while True:
            try:
                self._sock.send(payload)
                return
            except OSError as exc:
                if exc.errno not in _BUSY:
                    raise
                time.sleep(RETRY_SLEEP)

    def send_all(self, payloads: Iterable[bytes]) -> int:
        sent = 0
        for payload in payloads:
            self.send(payload)
            sent += 1
        return sent

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> NativeWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class KeepAlive:
    """An open stdout stream to journald, so the namespace instance stays up.

    A namespaced journald exits after 30 s without clients (IDLE_TIMEOUT_USEC in
    journald-server.c), and a benchmark spends minutes reading without writing. The stream
    sends its header (identifier, unit, priority, level prefix, three forward flags;
    journald-stream.c) and then never a line, so it adds no entry.
    """

    HEADER = b"bench-keepalive\n\n6\n0\n0\n0\n0\n"

    def __init__(self, stdout_socket: Path) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.connect(str(stdout_socket))
        self._sock.sendall(self.HEADER)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> KeepAlive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def send_paced(
    socket_path: Path, payloads: Iterable[bytes], pause: Callable[[], float], stop: Event
) -> None:
    """Send each payload (built lazily, so a send-time stamp is fresh), then wait
    `pause()` seconds; `stop` ends it early (the caller was interrupted)."""
    with NativeWriter(socket_path) as writer:
        for payload in payloads:
            if stop.is_set():
                return
            writer.send(payload)
            stop.wait(pause())


def fill(socket_path: Path, entries: int) -> float:
    """Write `entries` task lines; returns the seconds it took."""
    prefixes = [task_prefix(t) for t in range(TASKS)]
    started = time.perf_counter()
    with NativeWriter(socket_path) as writer:
        writer.send_all(task_datagram(i, prefixes) for i in range(entries))
    return time.perf_counter() - started
