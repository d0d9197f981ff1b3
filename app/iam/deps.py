"""FastAPI dependencies of the IAM's routes, as `Annotated` aliases over the one `IamServices`
its host app hands them (`app.iam.api.serve_iam`).

Admission is the gateway's step (`app.authz.gate`): 401 without a good IAM token, 404 for a
path no rule matches, 403 naming what the route table's rule needs (`dcos:superuser` `full`
for the admin API; that or `dcos:iam:policyquery` `read` for the policy query and for reading
one user, `GET /users/{uid}`, which a remote-IAM gateway asks). Changes are audited as
`iam-admin` events, refusals too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import Depends
from starlette.requests import HTTPConnection, Request

from app.authn import Identity
from app.authn.extract import AUTH_COOKIE
from app.authz.audit import audit_event
from app.authz.gate import require, rule_for
from app.authz.model import Authorizer
from app.authz.route_table import POLICYQUERY, AnyOf
from app.core.errors import Forbidden, Unauthenticated
from app.iam.service import Iam

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The one admin route the policy query's grant also opens (GET, HEAD): does this uid exist?
USER_LOOKUP = "/users/{uid}"


@dataclass(frozen=True, slots=True)
class IamServices:
    iam: Iam
    # Decides the route table's rules; normally the embedded authorizer over `iam.store`.
    authorizer: Authorizer


async def _services(request: Request) -> IamServices:
    services: IamServices = request.app.state.iam
    return services


IamServicesDep = Annotated[IamServices, Depends(_services)]


async def _iam(services: IamServicesDep) -> Iam:
    return services.iam


IamDep = Annotated[Iam, Depends(_iam)]


async def _authorizer(services: IamServicesDep) -> Authorizer:
    return services.authorizer


AuthorizerDep = Annotated[Authorizer, Depends(_authorizer)]


async def admitted(request: Request, services: IamServicesDep) -> Identity:
    """The caller, admitted on its route's rule: the dependency of every IAM route that needs
    a token (`APIRouter(dependencies=[Depends(admitted)])`)."""
    identity = await services.iam.authenticator.authenticate(request)
    if identity is None:
        raise Unauthenticated("Authentication required")
    _refuse_cross_site(request)
    requirement = rule_for(request.scope["path"]).rule.requirement
    # Only permission rules guard the IAM's routes; any other is a mistake, and denies.
    checks = requirement.checks if isinstance(requirement, AnyOf) else ()
    if _is_user_lookup(request):
        # Whether a uid exists: a remote-IAM gateway asks before trusting a token's uid
        # (app/authn/remote_uids.py), with the grant it has for the policy query.
        checks = (*checks, POLICYQUERY)
    try:
        await require(services.authorizer, identity.uid, checks)
    except Forbidden as exc:
        audit_event("iam-admin", "deny", **_what(request, identity), reason=exc.message)
        raise
    if request.method not in ("GET", "HEAD"):
        audit_event("iam-admin", "allow", **_what(request, identity))
    return identity


def _is_user_lookup(request: Request) -> bool:
    # The route's path as declared (FastAPI keeps the router's, without the prefix).
    route: str = getattr(request.scope.get("route"), "path", "")
    return request.method in ("GET", "HEAD") and route.endswith(USER_LOOKUP)


def _refuse_cross_site(request: Request) -> None:
    """A change made with the cookie alone must come from a page of this origin (J18).

    SameSite=Strict keeps other *sites* out, but sibling subdomains are the same site; so an
    unsafe request authenticated by the cookie (no Authorization header) needs an `Origin`
    naming our host. Browsers always send `Origin` on such requests; other clients use the
    header, not the cookie. Only the host:port is compared: behind a TLS-terminating proxy
    the scheme we see is not the browser's.
    """
    if request.method in SAFE_METHODS or "authorization" in request.headers:
        return
    if AUTH_COOKIE not in request.cookies:
        return
    origin = urlsplit(request.headers.get("origin", ""))
    if not origin.netloc or origin.netloc != request.headers.get("host"):
        raise Forbidden("Forbidden: cookie-authenticated change without a same-origin Origin")


def client_address(conn: HTTPConnection) -> str:
    """The peer address; forwarded-for headers are not trusted (nothing sits in front of the
    gateway that we could trust them from)."""
    return conn.client.host if conn.client else "unknown"


def _what(request: Request, identity: Identity) -> dict[str, str | None]:
    route = getattr(request.scope.get("route"), "path", None)
    return {
        "uid": identity.uid,
        "srcip": client_address(request),
        "method": request.method,
        "object": route,
    }
