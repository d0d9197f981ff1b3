"""How the gateway reaches Mesos and the node readers, and how old a snapshot may be."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

import httpx

from app.core.credential import TokenProvider

# Admin Router's cache defaults (reference §3.3): poll every 25 s, warn after 75 s,
# refuse after 3 days. AR sent `User-Agent: Master Admin Router`.
DEFAULT_POLL_PERIOD = 25.0
DEFAULT_SOFT_LIMIT = 75.0
DEFAULT_HARD_LIMIT = 259_200.0
DEFAULT_REQUEST_TIMEOUT = 60.0
DEFAULT_REFRESH_MIN_INTERVAL = 5.0
DEFAULT_REFRESH_WAIT = 3.0
DEFAULT_READER_PORT = 61001
USER_AGENT = "Logway gateway"


@dataclass(frozen=True, kw_only=True)
class ClusterSettings:
    """`masters`: base URLs of one or more Mesos masters (`http://leader.mesos:5050`, or every
    master of the cluster); any of them leads the client to the leader."""

    masters: tuple[str, ...] = ("http://leader.mesos:5050",)
    reader_scheme: str = "http"
    reader_port: int = DEFAULT_READER_PORT
    poll_period: float = DEFAULT_POLL_PERIOD
    soft_limit: float = DEFAULT_SOFT_LIMIT
    hard_limit: float = DEFAULT_HARD_LIMIT
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    # Least time between two refreshes triggered by requests (unknown agent or task).
    refresh_min_interval: float = DEFAULT_REFRESH_MIN_INTERVAL
    # Longest a request waits for a refresh it joins; then `RefreshPending` (503, Retry-After).
    refresh_wait: float = DEFAULT_REFRESH_WAIT
    user_agent: str = USER_AGENT
    service_token: TokenProvider | None = None

    def __post_init__(self) -> None:
        if isinstance(self.masters, str) or not self.masters:
            raise ValueError("masters must be a non-empty sequence of URLs")
        object.__setattr__(self, "masters", tuple(_master_url(m) for m in self.masters))
        if self.reader_scheme not in ("http", "https"):
            raise ValueError("reader_scheme must be http or https")
        if not 1 <= self.reader_port <= 65535:
            raise ValueError("reader_port must be in 1..65535")
        if min(self.poll_period, self.soft_limit, self.request_timeout) <= 0:
            raise ValueError("poll_period, soft_limit and request_timeout must be positive")
        if self.hard_limit < self.soft_limit:
            raise ValueError("hard_limit must not be below soft_limit")
        if self.refresh_wait <= 0:
            raise ValueError("refresh_wait must be positive")
        if self.refresh_min_interval < 0:
            raise ValueError("refresh_min_interval must not be negative")

    @property
    def master_ips(self) -> tuple[str, ...]:
        """The configured masters named by IP address: nodes the gateway knows to be masters
        whether or not they lead (a name such as `leader.mesos` says nothing of that)."""
        found: list[str] = []
        for url in self.masters:
            try:
                ip = ipaddress.ip_address(httpx.URL(url).host).compressed
            except ValueError:
                continue
            if ip not in found:
                found.append(ip)
        return tuple(found)


def _master_url(url: str) -> str:
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"Mesos master URL must be http(s)://host[:port]: {url!r}")
    if parsed.query or parsed.fragment or parsed.userinfo:
        raise ValueError(f"Mesos master URL must not carry credentials, query or fragment: {url!r}")
    return str(parsed.copy_with(path=parsed.path.rstrip("/"))).rstrip("/")
