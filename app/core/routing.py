"""An app's routes as its router tries them, included routers walked into.

FastAPI flattens included routers differently across versions (0.16x keeps them as
`_IncludedRouter`s walked by `iter_route_contexts`); this module is the one place that knows."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import fastapi.routing
from starlette.routing import BaseRoute


def walk_routes(routes: Iterable[BaseRoute]) -> Iterator[Any]:
    """Each route, with the full path it is served at (`.path`); in FastAPI 0.16x a route
    context whose `original_route` is the declared route."""
    iterate: Callable[[Any], Iterator[Any]] | None = getattr(
        fastapi.routing, "iter_route_contexts", None
    )
    if iterate is None:  # FastAPI < 0.16: included routers are flattened into APIRoutes
        yield from routes
        return
    yield from iterate(list(routes))
