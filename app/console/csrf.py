"""Cross-site request forgery protection for cookie-authenticated state changes.

The IAM's login sets the `dcos-acs-auth-cookie` cookie (SameSite=Strict), and the browser
console signs in and out with POSTs. Browsers mark where a request comes from; other clients
(the CLIs, curl, SDKs) send neither header and are not affected. The rule is the one of Go's
`net/http.CrossOriginProtection` (go.dev/issue/73626, after Filippo Valsorda's
"CSRF" write-up): a non-safe request is refused when

1. `Sec-Fetch-Site` is present and is neither `same-origin` nor `none` (user-initiated), or
2. there is no `Sec-Fetch-Site` (older browsers) but an `Origin` whose host is not the `Host`.

GET, HEAD and OPTIONS never change state here (logout, the one GET that does for DC/OS
compatibility, is refused on a cross-site `Sec-Fetch-Site` as well).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.problems import problem

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Routes that change state though reached by GET (DC/OS's logout).
STATE_CHANGING_GETS = frozenset({"/acs/api/v1/auth/logout"})
ALLOWED_FETCH_SITES = frozenset({"same-origin", "none"})
REFUSED = "cross-origin request refused: state-changing calls must come from this origin"


def cross_origin(method: str, path: str, headers: dict[str, str]) -> bool:
    """True when a browser sent this state-changing request from another origin."""
    if method in SAFE_METHODS and path not in STATE_CHANGING_GETS:
        return False
    site = headers.get("sec-fetch-site")
    if site is not None:
        return site not in ALLOWED_FETCH_SITES
    origin = headers.get("origin")
    if origin is None:
        return False  # not a browser, or one that sends neither: SameSite still holds
    if origin == "null":
        return True
    return urlsplit(origin).netloc.lower() != headers.get("host", "").lower()


class CrossOriginProtection:
    """ASGI middleware: 403 for cross-origin state changes, before any route runs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {
                k.decode("latin-1"): v.decode("latin-1")
                for k, v in scope["headers"]
                if k in (b"sec-fetch-site", b"origin", b"host")
            }
            if cross_origin(scope["method"], scope["path"], headers):
                await problem(403, REFUSED)(scope, receive, send)
                return
        await self.app(scope, receive, send)
