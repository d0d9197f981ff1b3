"""FastAPI dependencies of the gateway's routes, as `Annotated` aliases over `app.state`.

All are `async def`: FastAPI runs a plain `def` dependency in a worker thread, which cost the
gateway measurable CPU per request (bench `gateway` section)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from app.authn import Authenticator, Identity
from app.authn.errors import TokenRejected
from app.authz import Authorizer
from app.authz.audit import audit
from app.authz.model import Action, Decision
from app.cluster import ClusterState
from app.core.errors import Unauthenticated
from app.proxy import Proxy, TokenProvider


async def _identity(request: Request) -> Identity:
    """The verified caller, or 401; every refusal is counted and audited by its reason."""
    authenticator: Authenticator = request.app.state.authenticator
    try:
        found = await authenticator.authenticate(request)
    except TokenRejected as exc:
        _refused(request, exc.reason.name.lower())
        raise
    if found is None:
        _refused(request, "missing")
        raise Unauthenticated("Authentication required")
    identity: Identity = found
    return identity


def _refused(request: Request, reason: str) -> None:
    request.app.state.metrics.auth_failures[reason] += 1
    action = Action.READ if request.method in ("GET", "HEAD") else Action.FULL
    audit("-", request.scope["path"], action, Decision.DENY, f"not authenticated: {reason}")


async def _authorizer(request: Request) -> Authorizer:
    authorizer: Authorizer = request.app.state.authorizer
    return authorizer


async def _cluster(request: Request) -> ClusterState:
    cluster: ClusterState = request.app.state.cluster
    return cluster


async def _proxy(request: Request) -> Proxy:
    proxy: Proxy = request.app.state.proxy
    return proxy


async def _node_tokens(request: Request) -> TokenProvider:
    tokens: TokenProvider = request.app.state.node_tokens
    return tokens


CallerDep = Annotated[Identity, Depends(_identity)]
AuthorizerDep = Annotated[Authorizer, Depends(_authorizer)]
ClusterDep = Annotated[ClusterState, Depends(_cluster)]
ProxyDep = Annotated[Proxy, Depends(_proxy)]
NodeTokensDep = Annotated[TokenProvider, Depends(_node_tokens)]


@dataclass(frozen=True, slots=True)
class Gate:
    """What every proxied log route needs: the verified caller, who decides, where nodes are,
    how to reach them and the gateway's own credential towards them."""

    caller: Identity
    authorizer: Authorizer
    cluster: ClusterState
    proxy: Proxy
    node_tokens: TokenProvider  # the gateway's credential for one node reader

    @property
    def uid(self) -> str:
        return self.caller.uid


async def _gate(
    caller: CallerDep,
    authorizer: AuthorizerDep,
    cluster: ClusterDep,
    proxy: ProxyDep,
    node_tokens: NodeTokensDep,
) -> Gate:
    return Gate(caller, authorizer, cluster, proxy, node_tokens)


GateDep = Annotated[Gate, Depends(_gate)]
