"""Settings, validated at start-up. Environment variables use the LOGWAY_ prefix."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.core.audience import node_audience

HEARTBEAT_INTERVAL = 15.0


WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})


class NodeSettings(BaseSettings):
    """`logway node`: which journal, where to listen, who may read."""

    model_config = SettingsConfigDict(env_prefix="LOGWAY_NODE_", frozen=True)

    journal_namespace: str | None = None
    journal_dir: Path | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=61001, ge=1, le=65535)
    uds: Path | None = None
    no_auth: bool = False
    # Token verification: a PEM public key file or a JWKS URL (one is required with auth).
    public_key: Path | None = None
    jwks_url: str | None = None
    # uids allowed to read (the gateway's service account); empty = any verified uid.
    allowed_uids: tuple[str, ...] = ()
    # This reader's address as the gateway dials it (`10.0.4.7:61001`: the node's IP in the
    # Mesos state and the reader port). Tokens must be addressed to it (`aud`, issue 12 §2).
    # Default: host:port, when host is one address (not 0.0.0.0 or ::, not a socket).
    address: str | None = None
    heartbeat_interval: float = Field(default=HEARTBEAT_INTERVAL, gt=0)
    journal_threads: int = Field(default=8, ge=1, le=64)

    @model_validator(mode="after")
    def _check(self) -> NodeSettings:
        if self.journal_namespace is not None and self.journal_dir is not None:
            raise ValueError("give --journal-namespace or --journal-dir, not both")
        if not self.no_auth and self.public_key is None and self.jwks_url is None:
            raise ValueError("authentication needs --public-key or --jwks-url (or --no-auth)")
        if not self.no_auth and self.audience is None:
            raise ValueError(
                "authentication needs this reader's address as the gateway dials it: "
                "--address HOST:PORT (LOGWAY_NODE_ADDRESS) when listening on every interface "
                "or on a socket"
            )
        return self

    @property
    def audience(self) -> str | None:
        """The `aud` a token must carry here (app/core/audience.py)."""
        if self.address is not None:
            host, sep, port = self.address.rpartition(":")
            if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
                raise ValueError(f"address must be HOST:PORT, not {self.address!r}")
            return node_audience(host, int(port))
        if self.uds is not None or self.host in WILDCARD_HOSTS:
            return None
        return node_audience(self.host, self.port)


class GatewaySettings(BaseSettings):
    """`logway gateway`: where it listens, and either where its embedded IAM's state (store,
    keys) lives or which remote IAM it uses (`iam_url`, app/gateway/remote_iam.py)."""

    model_config = SettingsConfigDict(env_prefix="LOGWAY_GATEWAY_", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # Worker processes on the one address (app/core/workers.py): one per core serves
    # thousands of followers; each holds its own share of the streams and file descriptors.
    workers: int = Field(default=1, ge=1, le=64)
    data_dir: Path = Path(".logway/gateway")
    # Mesos masters to learn the cluster from (any of them leads to the leader).
    mesos_masters: tuple[str, ...] = ("http://leader.mesos:5050",)
    # Every node reader listens on this port and scheme, at the node's Mesos IP.
    reader_port: int = Field(default=61001, ge=1, le=65535)
    reader_scheme: str = "http"
    # The uid of the gateway's own service token, the one node readers allow.
    service_uid: str = "logway-gateway"
    # Lifetime of the credential the gateway mints for one node reader (or for Mesos), in
    # seconds; renewed at half of it (embedded IAM; issue 12 §2).
    node_token_lifetime: int = Field(default=300, ge=30, le=3600)
    # This master's own node reader; None: the leading master's reader from the cluster state.
    master_reader_url: str | None = None
    # A client that reads nothing for this long loses its stream (nginx `send_timeout`).
    client_send_timeout: float = Field(default=60.0, gt=0)
    # Follow streams (v1 `stream/`, SSE) one identity may hold open through this gateway
    # process at once; one more is 429 with Retry-After, so one caller cannot pin every node
    # reader's followers. Merged streams have their own cap (merge_max_streams_per_identity).
    max_follows_per_identity: int = Field(default=32, ge=1)
    # An open stream ends within this many seconds of its caller losing access: the IAM's
    # change signal is looked at this often, and the streams decided again when it moved
    # (a token's expiry is exact). See app/authz/access.py.
    stream_access_period: float = Field(default=2.0, gt=0, le=5)
    # On the PostgreSQL IAM store both caps count across every replica, one lease per stream
    # (app/gateway/leases.py): a replica that dies frees its slots within this many seconds.
    stream_lease_ttl: float = Field(default=15.0, ge=1, le=30)
    # The Mesos state cache (Admin Router's CACHE_* settings, reference §3.3), in seconds.
    mesos_poll_period: float = Field(default=25.0, gt=0)
    mesos_soft_limit: float = Field(default=75.0, gt=0)
    mesos_hard_limit: float = Field(default=259_200.0, gt=0)
    mesos_request_timeout: float = Field(default=60.0, gt=0)
    # Least time between two refreshes that requests for an unknown agent or task trigger.
    mesos_refresh_min_interval: float = Field(default=5.0, ge=0)
    # Longest a request waits for a refresh it needs (unknown agent or task, no usable state);
    # then 503 with Retry-After while the refresh goes on in the background.
    mesos_refresh_wait: float = Field(default=3.0, gt=0, le=60)
    # Merged role and app reads (`/system/v1/logs/v1/{role|app}/…`, app/gateway/merged.py).
    # A stream holds each entry at most this long (seconds) to put the agents in time order.
    merge_reorder_window: float = Field(default=0.25, ge=0, le=10)
    # Agents one merged read may span, and merged streams one identity may hold open at once
    # on this gateway process; over either: 429 with Retry-After.
    merge_max_agents: int = Field(default=64, ge=1)
    merge_max_streams_per_identity: int = Field(default=8, ge=1)
    # How often a merged stream looks at the cluster state for tasks and agents that came or
    # went (the state itself is polled every `mesos_poll_period`).
    merge_membership_period: float = Field(default=1.0, gt=0)
    # The largest `skip_prev` of a merged read: each agent is asked for that many entries.
    merge_max_skip_prev: int = Field(default=100_000, ge=1)
    # How long a merged range waits for one agent's answer before it leaves that agent out
    # (named in X-Logway-Unavailable-Agents) instead of holding the read.
    merge_agent_timeout: float = Field(default=5.0, gt=0)
    # A remote DC/OS-style IAM shared by every replica (another gateway's embedded IAM, or
    # DC/OS's): logins are forwarded there, tokens verified by its JWKS, decisions asked of its
    # policy query. None: the embedded IAM in `data_dir`.
    iam_url: str | None = None
    # With `iam_url`: the PEM private key of the `service_uid` service account, whose public
    # key is registered at that IAM (the gateway logs in with it).
    service_private_key: Path | None = None
    # With `iam_url`: seconds a policy-query decision is reused (a revoke bites within this).
    iam_cache_ttl: float = Field(default=5.0, ge=0, le=300)

    @field_validator("iam_url")
    @classmethod
    def _iam_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        # `.port` raises ValueError itself on a port out of range or not a number.
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.port == 0:
            raise ValueError("iam_url must be an http(s) URL with a host")
        if parts.query or parts.fragment:
            raise ValueError("iam_url must not carry a query or fragment")
        return value.rstrip("/")
