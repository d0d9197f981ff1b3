"""The authorization step every request passes: its path's rule in the route table, decided
for the caller (ARCHITECTURE §3, step 2).

Both shells that serve routes use it: the gateway's admission (`app.gateway.admission`, which
adds a task route's resolution) and the embedded IAM's (`app.iam.deps`). Either refuses to
start with a route the table has no rule for (`check_routes`): it would be served without any
decision.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from starlette.routing import BaseRoute, Route

from app.authz.model import Authorizer
from app.authz.route_table import ResourceCheck, RouteMatch, authorize_any, match_route
from app.core.errors import Forbidden, NotFound
from app.core.routing import walk_routes

# `{name:path}` / `{name}` in a route's path, for a sample path to look its rule up with.
_PARAM = re.compile(r"\{[^}:]+(:path)?\}")


def rule_for(path: str) -> RouteMatch:
    """The rule of a decoded request path, or NotFound (404) where no rule matches."""
    matched = match_route(path)
    if matched is None:
        raise NotFound("no such route")
    return matched


async def require(authorizer: Authorizer, uid: str, checks: tuple[ResourceCheck, ...]) -> None:
    """Forbidden (403) naming what is missing, unless one of `checks` allows; none: deny."""
    if not (await authorize_any(authorizer, uid, checks)).allowed:
        needed = " or ".join(check.describe() for check in checks) or "a rule that allows it"
        raise Forbidden(f"`{uid}` lacks the permission this route needs: {needed}")


def check_routes(routes: Iterable[BaseRoute]) -> None:
    """Raise RuntimeError naming every route the route table has no rule for."""
    missing = [
        route.path
        for route in walk_routes(routes)
        if isinstance(getattr(route, "original_route", route), Route)
        and match_route(_sample_path(route.path)) is None
    ]
    if missing:
        raise RuntimeError(
            "routes without a rule in app/authz/route_table.py (each needs one, even a "
            f"public one): {', '.join(missing)}"
        )


def _sample_path(template: str) -> str:
    """A path `template` serves: `x` for a segment, nothing for the rest of a path (`{rest:path}`
    after `logs` or a resource id's place between two slashes)."""
    return re.sub("/{2,}", "/", _PARAM.sub(lambda m: "" if m[1] else "x", template))
