"""What tests change and observe: who leads, which master misbehaves, which requests came.

Shared by every simulated master's app (each on its own server thread), hence the lock.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

from app.devcluster.mesos.document import StateDocument
from app.devcluster.mesos.model import SimMaster

FaultKind = Literal["status", "stall", "trickle", "garbage"]
GARBAGE = b'{"slaves": [{"id": "trunc'


class Lifecycle(Protocol):
    """The simulator's servers, as the apps see them."""

    def stopping(self, master: int) -> bool: ...
    def stop_master(self, master: int) -> None: ...
    def start_master(self, master: int) -> None: ...


@dataclass(frozen=True)
class Fault:
    """How a master answers its Mesos endpoints instead of normally.

    `status`: that HTTP status with `body`. `stall`: sleep `seconds`, then answer normally
    (a fault cleared meanwhile ends the sleep). `trickle`: the normal status and headers at
    once, then the body one byte every `seconds` (a choked link: every read gets something,
    so no read timeout fires; a fault cleared meanwhile sends the rest at once). `garbage`:
    200 with a truncated JSON body.
    Stopping a master (connection refused) is `MesosSimulator.stop_master`.
    """

    kind: FaultKind
    status: int = 503
    seconds: float = 0.0
    body: str = "Service Unavailable"


@dataclass(frozen=True)
class RecordedRequest:
    master: int
    method: str
    path: str
    query: str
    user_agent: str | None
    # Redacted (`redact_credential`): what scheme and claims were sent, never a usable token.
    authorization: str | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def redact_credential(value: str | None) -> str | None:
    """`token=<header>.<claims>.REDACTED` for a JWT (its claims are no secret, its signature
    is what makes it a credential), `<scheme> REDACTED` otherwise."""
    if value is None:
        return None
    for scheme in ("token=", "Bearer ", "bearer "):
        if value.startswith(scheme):
            parts = value[len(scheme) :].split(".")
            kept = ".".join([*parts[:2], "REDACTED"]) if len(parts) == 3 else "REDACTED"
            return scheme + kept
    return "REDACTED"


class Controls:
    def __init__(
        self, document: StateDocument, masters: tuple[SimMaster, ...], leader: int | None
    ) -> None:
        self.document = document
        self.masters = masters
        self._lock = threading.Lock()
        self._leader: int | None = None
        self._faults: dict[int, Fault] = {}
        self._requests: list[RecordedRequest] = []
        self.set_leader(leader)

    @property
    def leader(self) -> SimMaster | None:
        with self._lock:
            return None if self._leader is None else self.masters[self._leader]

    def set_leader(self, index: int | None) -> None:
        if index is not None and not 0 <= index < len(self.masters):
            raise IndexError(f"no master {index}")
        with self._lock:
            self._leader = index

    def fault(self, master: int) -> Fault | None:
        with self._lock:
            return self._faults.get(master)

    def set_fault(self, fault: Fault | None, master: int | None = None) -> None:
        """`master` None: every master."""
        with self._lock:
            for index in range(len(self.masters)) if master is None else (master,):
                if fault is None:
                    self._faults.pop(index, None)
                else:
                    self._faults[index] = fault

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def requests(self, path: str | None = None, master: int | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [
                r for r in self._requests if path in (None, r.path) and master in (None, r.master)
            ]

    def count(self, path: str | None = None, master: int | None = None) -> int:
        return len(self.requests(path, master))

    def reset_requests(self) -> None:
        with self._lock:
            self._requests.clear()
