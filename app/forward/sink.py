"""The forwarder → aggregator seam: `send(batch)` returns once the target has accepted the
whole batch, or raises `SinkError` saying whether trying again may help."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

from app.forward.record import Record


class SinkError(Exception):
    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        refused: bool = False,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        # The receiver took the connection and closed it on what was sent: retried a few
        # times (a restart looks the same once), then reported as a refusal.
        self.refused = refused


class ConfigError(ValueError):
    """A sink URL or option that cannot work: bad usage, found before anything is read."""


class Sink(Protocol):
    @property
    def name(self) -> str:
        """The URL without credentials, for status and metrics."""
        ...

    async def send(self, batch: Sequence[Record]) -> None: ...

    async def close(self) -> None: ...


def query(url: str) -> dict[str, str]:
    """A sink URL's query options (the last value of each)."""
    return {key: values[-1] for key, values in parse_qs(urlsplit(url).query).items()}


def public(url: str) -> str:
    """The URL as shown: no password, no query secrets."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port is not None:
        netloc += f":{parts.port}"
    return parts._replace(netloc=netloc, query="", fragment="").geturl()


def open_sink(url: str) -> Sink:
    """The sink for a URL's scheme; `ConfigError` for a scheme or option it cannot use."""
    scheme = urlsplit(url).scheme
    if scheme in ("redis", "rediss"):
        from app.forward.redis_sink import RedisSink

        return RedisSink.from_url(url)
    if scheme in ("syslog+tcp", "syslog+tls"):
        from app.forward.syslog import SyslogSink

        return SyslogSink.from_url(url)
    if scheme in ("journal-remote+http", "journal-remote+https"):
        from app.forward.journal_remote import JournalRemoteSink

        return JournalRemoteSink.from_url(url)
    if scheme in ("otlp+http", "otlp+https"):
        from app.forward.otlp import OtlpSink

        return OtlpSink.from_url(url)
    if scheme == "file":
        from app.forward.file_sink import FileSink

        return FileSink.from_url(url)
    raise ConfigError(
        f"--to {public(url)!r}: unknown scheme {scheme!r}; expected redis://, syslog+tcp://, "
        "syslog+tls://, journal-remote+http(s)://, otlp+http(s):// or file://"
    )
