"""FastAPI dependencies of the node reader's routes, over the one `NodeServices` its lifespan
builds (the gateway's shape: `app.gateway.deps`).

All are `async def`: FastAPI runs a plain `def` dependency in a worker thread."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from app.authn import Authenticator
from app.core.errors import Unauthenticated
from app.journal.source import Journal


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeServices:
    journal: Journal
    authenticator: Authenticator | None  # None: --no-auth
    heartbeat: float  # seconds between SSE comments on an idle follow


def node_services(request: Request) -> NodeServices:
    services: NodeServices = request.app.state.services
    return services


async def _services(request: Request) -> NodeServices:
    return node_services(request)


ServicesDep = Annotated[NodeServices, Depends(_services)]


async def _journal(services: ServicesDep) -> Journal:
    return services.journal


JournalDep = Annotated[Journal, Depends(_journal)]


async def require_caller(request: Request, services: ServicesDep) -> None:
    """Every route's first step (an app-wide dependency): 401 without a good token."""
    if services.authenticator is None:  # --no-auth
        return
    identity = await services.authenticator.authenticate(request)
    if identity is None:
        raise Unauthenticated("Authentication required: send Authorization: token=<JWT>")
    request.state.identity = identity
