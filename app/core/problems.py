"""Error responses: the `LogwayError` tree mapped to HTTP in one place.

dcos-log answered errors with Go's `http.Error` (text/plain, `nosniff`, one line);
clients such as the dcos CLI print the body as is, so we keep that shape.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import PlainTextResponse, Response

from app.core.errors import AuthenticationError, LogwayError, Unauthenticated

log = logging.getLogger(__name__)

# The dcos CLI 0.6 accepts only `acsjwt` or `oauthjwt` here (reference §5).
WWW_AUTHENTICATE = "acsjwt"


def problem(status: int, message: str) -> Response:
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
    if status == 401:
        headers["WWW-Authenticate"] = WWW_AUTHENTICATE
    return PlainTextResponse(f"{message}\n", status_code=status, headers=headers)


async def _logway_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, LogwayError)
    if exc.status >= 500:
        log.warning("request failed: %s", exc.message)
    response = problem(exc.status, exc.message)
    retry_after = getattr(exc, "retry_after", None)
    if isinstance(retry_after, int):
        response.headers["Retry-After"] = str(retry_after)
    return response


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else "error"
    response = problem(exc.status_code, message)
    # Starlette's 405 names the allowed methods (RFC 9110 §15.5.6: a 405 MUST carry Allow).
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


async def _validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "path"))
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return problem(400, "Invalid request: " + "; ".join(parts))


async def _unexpected(_: Request, exc: Exception) -> Response:
    log.error("unhandled error", exc_info=exc)
    return problem(500, "Internal error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(LogwayError, _logway_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)


__all__ = ["AuthenticationError", "Unauthenticated", "install_error_handlers", "problem"]
