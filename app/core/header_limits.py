"""Refuse oversized request header blocks with 431 before any route, parser or token check.

Neither of uvicorn's HTTP parsers bounds a complete header block: h11 accepts about 50 KB sent
in one write (its `max_incomplete_event_size` bounds only incomplete events) and httptools has
no count limit (reference/security.md P8). RFC 6585 §5: 431 Request Header Fields Too Large.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

# A browser sends ~15 headers; curl 3; nginx's default large_client_header_buffers is 4 x 8 KiB.
MAX_HEADERS = 100
MAX_HEADER_BYTES = 32 * 1024
MAX_HEADER_VALUE_BYTES = 16 * 1024  # one header (a token is capped at 8 KiB by authn)


def header_problem(headers: list[tuple[bytes, bytes]]) -> str | None:
    """Why this header block is too large, or None when it is acceptable."""
    if len(headers) > MAX_HEADERS:
        return f"too many request headers ({len(headers)}; at most {MAX_HEADERS})"
    total = 0
    for name, value in headers:
        if len(value) > MAX_HEADER_VALUE_BYTES:
            return (
                f"request header {name.decode('latin-1')!r} is too large "
                f"({len(value)} bytes; at most {MAX_HEADER_VALUE_BYTES})"
            )
        total += len(name) + len(value)
    if total > MAX_HEADER_BYTES:
        return f"request headers too large ({total} bytes; at most {MAX_HEADER_BYTES})"
    return None


class HeaderLimits:
    """ASGI middleware answering 431 (plain text, connection closed) to oversized headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            why = header_problem(scope["headers"])
            if why is not None:
                body = f"{why}\n".encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 431,
                        "headers": [
                            (b"content-type", b"text/plain; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()),
                            (b"x-content-type-options", b"nosniff"),
                            (b"connection", b"close"),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)
