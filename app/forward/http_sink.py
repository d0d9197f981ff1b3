"""What the HTTP sinks share: one client per sink, the target URL from the sink URL (the
`journal-remote+`/`otlp+` prefix dropped), `?ca=FILE` for https, and statuses → errors."""

from __future__ import annotations

import ssl
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

from app.forward.sink import ConfigError, SinkError, public, query

TIMEOUT = httpx.Timeout(60.0, connect=10.0)
# Answers that mean "not now": the receiver is busy, restarting, or behind a proxy that is.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_ERROR_CHARS = 300


def target(url: str, prefix: str, default_path: str) -> str:
    parts = urlsplit(url)
    scheme = parts.scheme.removeprefix(prefix)
    if scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{public(url)}: expected {prefix}http(s)://host:port{default_path}")
    path = parts.path if parts.path not in ("", "/") else default_path
    return urlunsplit((scheme, parts.netloc, path, "", ""))


def client(url: str) -> httpx.AsyncClient:
    ca = query(url).get("ca")
    verify: ssl.SSLContext | bool = True
    if ca is not None:
        if not Path(ca).is_file():
            raise ConfigError(f"{public(url)}: ca {ca!r} is not a file")
        verify = ssl.create_default_context(cafile=ca)
    return httpx.AsyncClient(timeout=TIMEOUT, verify=verify)


def check(name: str, response: httpx.Response) -> None:
    status = response.status_code
    if status < 300:
        return
    text = response.text.strip()[:MAX_ERROR_CHARS]
    retry_after = response.headers.get("retry-after")
    delay = float(retry_after) if retry_after and retry_after.isdigit() else None
    raise SinkError(
        f"{name} answered {status}: {text}",
        retryable=status in RETRY_STATUSES,
        retry_after=delay,
    )


def transport_error(name: str, exc: httpx.TransportError) -> SinkError:
    return SinkError(f"{name}: {exc or type(exc).__name__}", retryable=True)
