"""Errors of the cluster layer, on top of the one tree in `app.core.errors`."""

from __future__ import annotations

from app.core.errors import LogwayError, NotFound, Unavailable


class Ambiguous(LogwayError):
    """A task name or id fragment matched several tasks; the message lists their ids."""

    status = 409

    def __init__(self, message: str, *, candidates: tuple[str, ...]) -> None:
        super().__init__(message)
        self.candidates = candidates


MAX_LISTED_CANDIDATES = 10


def ambiguous(query: str, candidates: tuple[str, ...]) -> Ambiguous:
    """The 409 for a task query that matched several tasks, listing at most ten of them."""
    listed = ", ".join(candidates[:MAX_LISTED_CANDIDATES])
    if len(candidates) > MAX_LISTED_CANDIDATES:
        listed += f" and {len(candidates) - MAX_LISTED_CANDIDATES} more"
    return Ambiguous(f"found more than 1 task matching `{query}`: {listed}", candidates=candidates)


class InvalidId(NotFound):
    """An id that cannot name anything in Mesos.

    A 404, not a 400: Admin Router's agent location only matches `[0-9a-zA-Z-]+`, so any
    other id never routes and the caller sees a 404 (reference §3.1).
    """


class RefreshPending(Unavailable):
    """A request waited `refresh_wait` for a Mesos state refresh that goes on (503)."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class MesosError(Exception):
    """One poll of the Mesos masters failed; the message says where and why.

    Internal to the layer: `ClusterState` keeps it as the "last error" it reports in its
    `Unavailable` messages, it never reaches a client as such.
    """
