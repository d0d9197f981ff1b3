"""Upstream failures, and the JSON answer a client gets when one happens before the first byte.

    LogwayError
    └── UpstreamError            502  {"error": ..., "node": ...}
        ├── UpstreamUnreachable  502  connect refused, DNS, reset before the response
        ├── UpstreamRejected     502  the node refused the gateway's own credential
        ├── UpstreamBroken       502  the response was cut or malformed
        ├── UpstreamBusy         503  no free connection in the pool
        └── UpstreamTimeout      504  connect (or the response head) timed out

After the response has started, the status can no longer change: the relay logs the error and
ends (or resumes) the stream instead. Messages never carry addresses or exception text; those go
to the log.
"""

from __future__ import annotations

from starlette.responses import JSONResponse

from app.core.errors import LogwayError


class UpstreamError(LogwayError):
    status = 502
    kind = "error"  # the `ProxyMetrics.upstream_errors` key

    def __init__(self, message: str, *, node: str) -> None:
        super().__init__(message)
        self.node = node


class UpstreamUnreachable(UpstreamError):
    kind = "connect"


class UpstreamRejected(UpstreamError):
    kind = "rejected"


class UpstreamBroken(UpstreamError):
    kind = "broken"


class UpstreamBusy(UpstreamError):
    status = 503
    kind = "pool"


class UpstreamTimeout(UpstreamError):
    status = 504
    kind = "timeout"


def upstream_problem(exc: UpstreamError) -> JSONResponse:
    return JSONResponse(
        {"error": exc.message, "node": exc.node},
        status_code=exc.status,
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )


__all__ = [
    "UpstreamBroken",
    "UpstreamBusy",
    "UpstreamError",
    "UpstreamRejected",
    "UpstreamTimeout",
    "UpstreamUnreachable",
    "upstream_problem",
]
