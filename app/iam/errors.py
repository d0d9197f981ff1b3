"""The two statuses the IAM needs beyond `app.core.errors` (kept here, not in the shared tree)."""

from __future__ import annotations

from app.core.errors import LogwayError


class Conflict(LogwayError):
    """The thing to create exists already (DC/OS IAM answers 409)."""

    status = 409


class TooManyRequests(LogwayError):
    """Too many failed logins or key rotations; `retry_after` is in whole seconds (the
    `Retry-After` header, set by app.core.problems)."""

    status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
