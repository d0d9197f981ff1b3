"""Write entries into a test namespace over journald's native protocol."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterable, Iterator, Mapping

import pytest

from app.devcluster.journald import JournaldNamespace


class Sender:
    def __init__(self, ns: JournaldNamespace) -> None:
        self.ns = ns
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.connect(str(ns.socket))

    def send(self, fields: Mapping[str, str | bytes]) -> None:
        parts = []
        for key, value in fields.items():
            raw = value.encode() if isinstance(value, str) else value
            if b"\n" in raw:
                parts.append(key.encode() + b"\n" + len(raw).to_bytes(8, "little") + raw + b"\n")
            else:
                parts.append(key.encode() + b"=" + raw + b"\n")
        self.sock.sendall(b"".join(parts))

    def send_many(self, entries: Iterable[Mapping[str, str | bytes]]) -> None:
        for fields in entries:
            self.send(fields)

    def sync(self) -> None:
        """Wait until journald has written everything sent so far."""
        self.ns.sync()

    def close(self) -> None:
        self.sock.close()


@contextlib.contextmanager
def sending_namespace() -> Iterator[tuple[JournaldNamespace, Sender]]:
    """A fresh namespace and a Sender to it (a module's journal fixture); the test is skipped
    where journald cannot run. Both end with the block."""
    from tests.conftest import journald_available, new_namespace_name

    if not journald_available():
        pytest.skip("needs root and /lib/systemd/systemd-journald")
    with JournaldNamespace(new_namespace_name()) as ns:
        sender = Sender(ns)
        try:
            yield ns, sender
        finally:
            sender.close()
