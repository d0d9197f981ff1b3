"""Gateway → node reader: upstream client, header hygiene, streaming relay, SSE resume."""

from app.proxy.call import SSE, Upstream, UpstreamCall, UpstreamResponse, is_follow
from app.proxy.client import HttpUpstream, new_upstream_client
from app.proxy.errors import (
    UpstreamBroken,
    UpstreamBusy,
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnreachable,
    upstream_problem,
)
from app.proxy.forward import Proxy
from app.proxy.metrics import ProxyMetrics
from app.proxy.relay import NO_RESUME, RelayResponse, ResumePolicy
from app.proxy.target import normalised_path, upstream_url

__all__ = [
    "NO_RESUME",
    "SSE",
    "HttpUpstream",
    "Proxy",
    "ProxyMetrics",
    "RelayResponse",
    "ResumePolicy",
    "Upstream",
    "UpstreamBroken",
    "UpstreamBusy",
    "UpstreamCall",
    "UpstreamError",
    "UpstreamRejected",
    "UpstreamResponse",
    "UpstreamTimeout",
    "UpstreamUnreachable",
    "is_follow",
    "new_upstream_client",
    "normalised_path",
    "upstream_problem",
    "upstream_url",
]
