"""An app's routes as the router tries them (`app.core.routing`), and FastAPI's own document of
a chosen few."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import fastapi.routing
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.routing import BaseRoute, compile_path

from app.core.routing import walk_routes

# Where a path template has a placeholder: `{name}` or `{name:convertor}`.
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::[a-z]+)?\}")


@dataclass(frozen=True, slots=True)
class RouteInfo:
    name: str
    path: str  # with convertors: `/system/v1/logs/{rest:path}`
    methods: frozenset[str]
    in_schema: bool
    api: bool  # an APIRoute (FastAPI documents it), not a plain Starlette route
    handle: Any  # what `get_openapi(routes=…)` takes for this route

    @property
    def path_format(self) -> str:
        """As OpenAPI names it: `/system/v1/logs/{rest}`."""
        return PLACEHOLDER.sub(lambda m: "{" + m[1] + "}", self.path)

    def matches(self, path: str, method: str) -> bool:
        regex = compile_path(self.path)[0]
        return method in self.methods and regex.match(path) is not None


def routes_of(app: FastAPI) -> list[RouteInfo]:
    """Every route of `app`, in the order the router tries them."""
    return [_info(route, handle) for route, handle in _walk(app.routes)]


def _walk(routes: list[BaseRoute]) -> Iterator[tuple[Any, Any]]:
    for route in walk_routes(routes):
        yield route, route


def _info(route: Any, handle: Any) -> RouteInfo:
    original = getattr(route, "original_route", route)
    return RouteInfo(
        name=str(getattr(route, "name", "")),
        path=str(getattr(route, "path", "")),
        methods=frozenset(getattr(route, "methods", None) or ()),
        in_schema=bool(getattr(route, "include_in_schema", False)),
        api=isinstance(original, fastapi.routing.APIRoute),
        handle=handle,
    )


def handler(routes: list[RouteInfo], path: str, method: str = "GET") -> RouteInfo | None:
    """The route that serves a concrete `path`: the first that matches, as in the router."""
    for route in routes:
        if route.matches(path, method):
            return route
    return None


def fastapi_document(app: FastAPI, routes: list[RouteInfo]) -> dict[str, Any]:
    """FastAPI's document of `routes` (those it documents at all), for their parameters and
    summaries; the operation ids are replaced later (FastAPI derives a GET+HEAD route's from
    a set's order, and warns that they are duplicates)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Duplicate Operation ID")
        return get_openapi(
            title=app.title,
            version=app.version,
            routes=[route.handle for route in routes if route.api and route.in_schema],
        )


def sample_path(template: str) -> str:
    """A concrete path for a template: a plausible value for each placeholder, one segment
    (`/{agent_id}/`), or `/…` for one glued to what precedes it (`logs{rest}`)."""

    def value(m: re.Match[str]) -> str:
        glued = m.start() > 0 and template[m.start() - 1] != "/"
        return ("/" if glued else "") + f"sample-{m[1].replace('_', '-')}"

    return PLACEHOLDER.sub(value, template)


def path_parameters(template: str, known: dict[str, Any]) -> list[dict[str, Any]]:
    """The template's path parameters, in order, from `known` schemas (a schema's
    `description` is moved to the parameter, where generators and readers look for it)."""
    out = []
    for name in PLACEHOLDER.findall(template):
        schema = dict(known[name])
        parameter = {"name": name, "in": "path", "required": True}
        if "description" in schema:
            parameter["description"] = schema.pop("description")
        out.append({**parameter, "schema": schema})
    return out
