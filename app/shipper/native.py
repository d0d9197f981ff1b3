"""journald's native protocol: encode one entry, send it as one datagram.

https://systemd.io/JOURNAL_NATIVE_PROTOCOL/ — one entry per datagram on an AF_UNIX SOCK_DGRAM
socket; `FIELD=value\\n` for plain values, `FIELD\\n<le64 length><bytes>\\n` for the rest; an entry
too large for a datagram travels in a sealed memfd passed with SCM_RIGHTS in an empty datagram,
exactly as sd_journal_sendv() does. journald (systemd 252, journal-importer.h) refuses a field
over DATA_SIZE_MAX (768 MiB) and an entry over ENTRY_SIZE_MAX (770 MiB); LineMax applies only to
the stdout stream transport, not here.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import select
import socket
import struct
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

SYSTEM_SOCKET = Path("/run/systemd/journal/socket")
# sd_journal_sendv() asks for the same (SNDBUF_SIZE); as root SO_SNDBUFFORCE passes wmem_max.
SEND_BUFFER_SIZE = 8 * 1024 * 1024
DATA_SIZE_MAX = 768 * 1024 * 1024
ENTRY_SIZE_MAX = 770 * 1024 * 1024
# How long a vanished journald socket may take to come back (journald restarting) before the
# writer gives up with JournalUnavailable.
RECONNECT_TIMEOUT = 5.0
_RETRY_DELAY_MIN = 0.001
_RETRY_DELAY_MAX = 0.1
_WRITABLE_WAIT_MS = 1000
_SO_SNDBUFFORCE = 32  # <asm-generic/socket.h>; the socket module lacks it
_SEALS = fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SEAL
# journal_field_valid(): upper case, digits and '_', no leading digit or '_', at most 64 bytes.
_FIELD_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
_LE64 = struct.Struct("<Q")
_FD = struct.Struct("i")
_GONE = frozenset({errno.ECONNREFUSED, errno.ENOENT, errno.ENOTCONN})


class JournalUnavailable(OSError):
    """journald's socket is gone and did not come back within the reconnect timeout."""


def namespace_socket(namespace: str) -> Path:
    return Path(f"/run/systemd/journal.{namespace}/socket")


def _is_plain(value: bytes) -> bool:
    if b"\n" in value:
        return False
    if value.isascii():
        return True
    try:
        value.decode()
    except UnicodeDecodeError:
        return False
    return True


def field_prefix(name: str) -> bytes:
    """`name` as it starts a field, validated once so hot paths can reuse the bytes."""
    if not _FIELD_NAME.fullmatch(name):
        raise ValueError(f"invalid journal field name: {name!r}")
    return name.encode("ascii")


def encode_value(prefix: bytes, value: bytes) -> bytes:
    """One field: text form for UTF-8 without newlines, binary form for anything else."""
    if len(value) > DATA_SIZE_MAX:
        raise ValueError(f"journal field {prefix.decode()} over {DATA_SIZE_MAX} bytes")
    if _is_plain(value):
        return b"%s=%s\n" % (prefix, value)
    return b"%s\n%s%s\n" % (prefix, _LE64.pack(len(value)), value)


def encode_field(name: str, value: bytes) -> bytes:
    return encode_value(field_prefix(name), value)


def encode(fields: Mapping[str, bytes]) -> bytes:
    """A whole entry: the payload of one datagram."""
    return b"".join(encode_field(name, value) for name, value in fields.items())


class JournalWriter:
    """A connected datagram socket to journald that never drops an entry.

    A busy journald (its receive queue full: EAGAIN) makes the send wait in poll(2) until
    there is room, which is the backpressure the caller wants; ENOBUFS backs off and retries;
    an entry larger than a datagram goes through a sealed memfd; a vanished socket (journald
    restarting) is reconnected for up to `reconnect_timeout` seconds, then JournalUnavailable
    is raised.
    """

    def __init__(
        self,
        path: Path | str = SYSTEM_SOCKET,
        *,
        send_buffer_size: int = SEND_BUFFER_SIZE,
        reconnect_timeout: float = RECONNECT_TIMEOUT,
    ) -> None:
        self.path = str(path)
        self._send_buffer_size = send_buffer_size
        self._reconnect_timeout = reconnect_timeout
        self._sock: socket.socket | None = None
        self._poll = select.poll()
        self._connect()

    def send(self, fields: Mapping[str, bytes]) -> None:
        self.send_entry(encode(fields))

    def send_entry(self, entry: bytes) -> None:
        """Send an already encoded entry (see encode()); returns once journald has it queued."""
        if len(entry) > ENTRY_SIZE_MAX:
            raise ValueError(f"journal entry over {ENTRY_SIZE_MAX} bytes")
        memfd: int | None = None
        deadline: float | None = None
        delay = _RETRY_DELAY_MIN
        try:
            while True:
                try:
                    sock = self._sock or self._connect()
                    if memfd is None:
                        sock.send(entry)
                    else:
                        sock.sendmsg([], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, _FD.pack(memfd))])
                    return
                except BlockingIOError:
                    self._poll.poll(_WRITABLE_WAIT_MS)
                    continue
                except OSError as exc:
                    if exc.errno == errno.EMSGSIZE and memfd is None:
                        memfd = _sealed_memfd(entry)
                        continue
                    if exc.errno in _GONE:
                        self._disconnect()
                        deadline = deadline or time.monotonic() + self._reconnect_timeout
                        if time.monotonic() >= deadline:
                            raise JournalUnavailable(
                                exc.errno, f"journald socket {self.path}: {exc.strerror}"
                            ) from exc
                    elif exc.errno != errno.ENOBUFS:  # kernel memory: poll would not wait
                        raise
                time.sleep(delay)
                delay = min(delay * 2, _RETRY_DELAY_MAX)
        finally:
            if memfd is not None:
                os.close(memfd)

    def close(self) -> None:
        self._disconnect()

    def _connect(self) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            _grow_send_buffer(sock, self._send_buffer_size)
            sock.connect(self.path)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._poll.register(sock, select.POLLOUT)
        return sock

    def _disconnect(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            self._poll.unregister(sock)
            sock.close()

    def __enter__(self) -> JournalWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _sealed_memfd(entry: bytes) -> int:
    """`entry` in a memfd sealed against any change, as journald requires to map it."""
    fd = os.memfd_create("logway-ship", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        view = memoryview(entry)
        while view:
            view = view[os.write(fd, view) :]
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, _SEALS)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _grow_send_buffer(sock: socket.socket, size: int) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
    if sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) >= size:
        return
    # Unprivileged, this fails and larger entries take the memfd path instead.
    with contextlib.suppress(PermissionError):
        sock.setsockopt(socket.SOL_SOCKET, _SO_SNDBUFFORCE, size)
