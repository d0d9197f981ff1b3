"""Who may use the admin API: callers with an IAM auth token whose uid the injected
`Authorizer` allows `dcos:superuser` `full` (401 without a good token, 403 without the grant).

The policy query endpoint is for the gateway's service account: it needs that same grant, or
the narrower `dcos:iam:policyquery` `read` (which answers questions about anyone's
permissions but changes nothing). That grant also reads one user (`GET /users/{uid}`): a
gateway in remote-IAM mode asks it whether a token's uid still exists (app/authn/remote_uids.py).
"""

from __future__ import annotations

from typing import NoReturn
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection, Request

from app.authn import Identity, require_identity
from app.authn.extract import AUTH_COOKIE
from app.authz.audit import audit_event
from app.authz.model import SUPERUSER_RID, Action, Authorizer
from app.core.errors import Forbidden
from app.iam.service import Iam

POLICYQUERY_RID = "dcos:iam:policyquery"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# The one admin route a policy reader may also use: does this uid exist?
USER_LOOKUP = "/users/{uid}"


class Guard:
    def __init__(self, iam: Iam, authorizer: Authorizer) -> None:
        self._identify = require_identity(iam.authenticator)
        self._authorizer = authorizer

    async def allows(self, uid: str, rid: str, action: Action) -> bool:
        return (await self._authorizer.authorize(uid, rid, action)).allowed

    async def superuser(self, request: Request) -> Identity:
        """Dependency of every admin route."""
        identity = await self._identify(request)
        _refuse_cross_site(request)
        if not (
            await self.allows(identity.uid, SUPERUSER_RID, Action.FULL)
            or (
                _is_user_lookup(request)
                and await self.allows(identity.uid, POLICYQUERY_RID, Action.READ)
            )
        ):
            self._deny(request, identity, reason="needs dcos:superuser full")
        if request.method not in ("GET", "HEAD"):
            audit_event("iam-admin", "allow", **_what(request, identity))
        return identity

    async def policy_reader(self, request: Request) -> Identity:
        identity = await self._identify(request)
        if not (
            await self.allows(identity.uid, SUPERUSER_RID, Action.FULL)
            or await self.allows(identity.uid, POLICYQUERY_RID, Action.READ)
        ):
            self._deny(request, identity, reason=f"needs {POLICYQUERY_RID} read")
        return identity

    def _deny(self, request: Request, identity: Identity, *, reason: str) -> NoReturn:
        audit_event("iam-admin", "deny", **_what(request, identity), reason=reason)
        raise Forbidden(f"Forbidden: uid '{identity.uid}' {reason}")


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
