"""What the gateway's routes work with, built once per process in the lifespan and handed out
by one dependency (`app.gateway.deps.ServicesDep`) instead of attributes on `app.state`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from app.authn import Authenticator
from app.authz import Authorizer
from app.authz.access import AccessWatcher
from app.cluster import Cluster, ClusterSettings
from app.core.config import GatewaySettings
from app.core.credential import NodeTokenProvider
from app.gateway.limits import StreamSlots
from app.gateway.metrics import GatewayMetrics
from app.gateway.service_token import ServiceCredential
from app.proxy import Proxy


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayServices:
    settings: GatewaySettings
    authenticator: Authenticator
    authorizer: Authorizer
    # The gateway's own credentials (the caller's never leaves): towards Mesos, addressed to
    # it, and towards each node reader, addressed to that reader alone (app/core/audience.py).
    service_token: ServiceCredential
    node_tokens: NodeTokenProvider
    cluster: Cluster
    cluster_settings: ClusterSettings
    proxy: Proxy
    metrics: GatewayMetrics
    # Why the IAM cannot serve this gateway (for /readyz); None when it can.
    iam_problem: Callable[[], Awaitable[str | None]]
    # Per-identity counts of open merged streams and of open follows.
    merge_limits: StreamSlots
    follow_limits: StreamSlots
    # Ends open streams whose caller lost access (token expired, uid deleted, grant revoked).
    access: AccessWatcher
