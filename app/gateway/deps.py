"""FastAPI dependencies of the gateway's routes, as `Annotated` aliases over the one
`GatewayServices` the lifespan builds.

All are `async def`: FastAPI runs a plain `def` dependency in a worker thread, which cost the
gateway measurable CPU per request (bench `gateway` section)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from app.authn import Identity
from app.authn.errors import TokenRejected
from app.authz import Authorizer
from app.authz.audit import audit
from app.authz.model import Action, Decision
from app.cluster import Cluster
from app.core.credential import NodeTokenProvider
from app.core.errors import Unauthenticated
from app.gateway.admission import Target, admit
from app.gateway.services import GatewayServices
from app.proxy import Proxy


async def _services(request: Request) -> GatewayServices:
    services: GatewayServices = request.app.state.services
    return services


ServicesDep = Annotated[GatewayServices, Depends(_services)]


async def _identity(request: Request) -> Identity:
    """The verified caller, or 401; every refusal is counted and audited by its reason."""
    services: GatewayServices = request.app.state.services
    try:
        found = await services.authenticator.authenticate(request)
    except TokenRejected as exc:
        _refused(request, services, exc.reason.name.lower())
        raise
    if found is None:
        _refused(request, services, "missing")
        raise Unauthenticated("Authentication required")
    identity: Identity = found
    return identity


def _refused(request: Request, services: GatewayServices, reason: str) -> None:
    services.metrics.auth_failures[reason] += 1
    action = Action.READ if request.method in ("GET", "HEAD") else Action.FULL
    audit("-", request.scope["path"], action, Decision.DENY, f"not authenticated: {reason}")


CallerDep = Annotated[Identity, Depends(_identity)]


# The services are read from the app's state here rather than through `ServicesDep`: each
# dependency FastAPI solves costs the hottest routes measurable CPU per request (issue 17).


async def _target(request: Request, caller: CallerDep) -> Target:
    return await admit(request.scope["path"], caller, request.app.state.services)


TargetDep = Annotated[Target, Depends(_target)]
"""The request resolved and authorized (`app.gateway.admission`): every route that needs a
token takes this, and only this, to get its caller."""


@dataclass(frozen=True, slots=True)
class LogRead:
    """A log read through the gateway: what it asks for, resolved and authorized, and the
    services that serve it (who decides, where nodes are, how to reach them, with the
    gateway's own credential)."""

    target: Target
    services: GatewayServices

    @property
    def uid(self) -> str:
        return self.target.uid

    @property
    def authorizer(self) -> Authorizer:
        return self.services.authorizer

    @property
    def cluster(self) -> Cluster:
        return self.services.cluster

    @property
    def proxy(self) -> Proxy:
        return self.services.proxy

    @property
    def node_tokens(self) -> NodeTokenProvider:
        return self.services.node_tokens


async def _log_read(request: Request, target: TargetDep) -> LogRead:
    return LogRead(target, request.app.state.services)


LogReadDep = Annotated[LogRead, Depends(_log_read)]
