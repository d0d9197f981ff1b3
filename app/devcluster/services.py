"""The dev cluster's "system services": one thread writing a line per node (and Marathon's
lines on the node it leads from) every `SERVICE_PERIOD` seconds into that node's journald
namespace, with the fields a systemd unit's output carries that a client may set
(`SYSLOG_IDENTIFIER`, `UNIT`, `PRIORITY`; journald itself sets the trusted `_SYSTEMD_UNIT`,
so `/v2/component/<unit>` matches on `UNIT`)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from typing import Self

from app.devcluster.cluster import Node, SchedulerService, SystemService
from app.devcluster.lifecycle import Started
from app.shipper.native import JournalUnavailable, JournalWriter, namespace_socket

SERVICE_PERIOD = 1.0
PRIORITY_INFO = b"6"


class ServiceWriter(Started):
    def __init__(self, nodes: Sequence[Node], *, period: float = SERVICE_PERIOD) -> None:
        self._nodes = tuple(nodes)
        self._period = period
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._writers: list[JournalWriter] = []

    def start(self) -> Self:
        self._writers = [JournalWriter(namespace_socket(n.namespace)) for n in self._nodes]
        self._thread = threading.Thread(target=self._run, name="dev-services", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        for writer in self._writers:
            writer.close()
        self._writers = []

    def _run(self) -> None:
        i = 0
        while True:
            for node, writer in zip(self._nodes, self._writers, strict=True):
                service = node.service
                lines: list[tuple[SystemService | SchedulerService, str]] = [
                    (service, service.line(i))
                ]
                if node.scheduler is not None:
                    lines += [(node.scheduler, line) for line in node.scheduler.lines(i)]
                for unit, line in lines:
                    fields = {
                        "MESSAGE": line.encode(),
                        "SYSLOG_IDENTIFIER": unit.identifier.encode(),
                        "UNIT": unit.unit.encode(),
                        "PRIORITY": PRIORITY_INFO,
                    }
                    # journald going away ends the dev cluster anyway; keep the thread quiet.
                    with contextlib.suppress(JournalUnavailable):
                        writer.send(fields)
            i += 1
            if self._stop.wait(self._period):
                return
