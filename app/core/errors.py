"""One error tree for every layer; `app.core.problems` maps it to HTTP once."""

from __future__ import annotations


class LogwayError(Exception):
    """Base of every error Logway raises on purpose."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(LogwayError):
    """The client sent something we cannot use; the message names the parameter."""

    status = 400

    def __init__(self, message: str, *, parameter: str | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter


class NotFound(LogwayError):
    status = 404


class AuthenticationError(LogwayError):
    """Credentials were presented but are not acceptable (401)."""

    status = 401


class Unauthenticated(LogwayError):
    """No credentials at all (401)."""

    status = 401


class Forbidden(LogwayError):
    status = 403


class Unavailable(LogwayError):
    """A dependency (journal, cluster state, IAM) cannot answer now (503)."""

    status = 503


class JournalError(Unavailable):
    """libsystemd refused an operation on the journal."""
