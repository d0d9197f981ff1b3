"""FastAPI dependencies of the gateway's routes, as `Annotated` aliases over `app.state`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.authn import Identity
from app.authz import Authorizer
from app.cluster import ClusterState
from app.core.errors import Unauthenticated
from app.gateway.service_token import ServiceToken
from app.proxy import Proxy


async def _identity(request: Request) -> Identity:
    found = await request.app.state.iam.authenticator.authenticate(request)
    if found is None:
        raise Unauthenticated("Authentication required")
    identity: Identity = found
    return identity


def _authorizer(request: Request) -> Authorizer:
    authorizer: Authorizer = request.app.state.authorizer
    return authorizer


def _cluster(request: Request) -> ClusterState:
    cluster: ClusterState = request.app.state.cluster
    return cluster


def _proxy(request: Request) -> Proxy:
    proxy: Proxy = request.app.state.proxy
    return proxy


def _service_token(request: Request) -> ServiceToken:
    token: ServiceToken = request.app.state.service_token
    return token


CallerDep = Annotated[Identity, Depends(_identity)]
AuthorizerDep = Annotated[Authorizer, Depends(_authorizer)]
ClusterDep = Annotated[ClusterState, Depends(_cluster)]
ProxyDep = Annotated[Proxy, Depends(_proxy)]
ServiceTokenDep = Annotated[ServiceToken, Depends(_service_token)]
