"""`/console/…`: the page (one HTML document for every console URL; the browser routes), its
hashed static files, sign-out, and the catalog of what the caller may read.

Every response carries the console's security headers: a Content-Security-Policy without
inline script, `eval` or framing, `nosniff`, no referrer. Log lines never pass through here:
the page reads them from the log routes themselves, under the route table's authorization.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app.authn.extract import AUTH_COOKIE
from app.console.assets import Assets, load_assets
from app.console.catalog import catalog_document
from app.core.errors import NotFound
from app.gateway.deps import ServicesDep, TargetDep

BASE = "/console"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
IMMUTABLE = "public, max-age=31536000, immutable"
NO_CACHE = "no-cache"
JSON = "application/json"


def _secured(response: Response, cache: str) -> Response:
    response.headers.update(SECURITY_HEADERS)
    response.headers["Cache-Control"] = cache
    return response


def console_router(assets: Assets | None = None) -> APIRouter:
    """`assets`: the static files (loaded from the package by default)."""
    files = assets or load_assets(BASE)
    router = APIRouter()

    @router.get(BASE, include_in_schema=False)
    async def console_root() -> Response:
        return _secured(RedirectResponse(f"{BASE}/", status_code=301), NO_CACHE)

    @router.get(f"{BASE}/api/catalog")
    async def catalog(target: TargetDep, services: ServicesDep) -> Response:
        body = await catalog_document(target.uid, services.authorizer, services.cluster)
        return _secured(Response(body, media_type=JSON), "no-store")

    @router.post(f"{BASE}/api/logout", status_code=204)
    async def logout(request: Request) -> Response:
        """Clears the auth cookie (a POST, so the cross-origin check covers it)."""
        response = Response(status_code=204)
        response.delete_cookie(
            AUTH_COOKIE,
            path="/",
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        return _secured(response, "no-store")

    @router.get(f"{BASE}/static/{{digest}}/{{name}}", include_in_schema=False)
    async def static(digest: str, name: str) -> Response:
        asset = files.files.get(name)
        if digest != files.digest or asset is None:
            raise NotFound(f"no console file `{name}` in this release")
        return _secured(Response(asset.body, media_type=asset.media_type), IMMUTABLE)

    @router.get(f"{BASE}/{{rest:path}}")
    async def page(rest: str) -> Response:
        """Every other console URL is the page: it reads its own location."""
        if rest.startswith(("api/", "static/")):
            raise NotFound(f"no console resource `{BASE}/{rest}`")
        return _secured(Response(files.page, media_type="text/html; charset=utf-8"), NO_CACHE)

    return router
