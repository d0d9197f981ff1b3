"""The IAM's routes pass the gateway's authorization step (app/authz/gate.py): each has a route
table rule or the app does not start, and each that needs a token is admitted on that rule by
the one dependency (app/iam/deps.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute

from app.authz import Public, match_route
from app.core.routing import walk_routes
from app.iam import Iam, api, serve_iam
from app.iam.deps import admitted
from app.iam.views import PREFIX
from tests.iam.conftest import FakeAuthorizer, make_settings
from tests.support.routes import dependency_calls


@pytest.mark.parametrize(
    "route",
    [(r.path, getattr(r, "original_route", r)) for r in walk_routes(api.router.routes)],
    ids=lambda r: f"{r[1].name} {r[0]}",
)
def test_every_iam_route_that_needs_a_token_is_admitted(route: tuple[str, APIRoute]) -> None:
    path, declared = route
    sample = path.replace("{rid:path}", "dcos:x").replace("{", "").replace("}", "")
    matched = match_route(sample)
    assert matched is not None, path
    public = isinstance(matched.rule.requirement, Public)
    assert (admitted in dependency_calls(declared.dependant)) != public


def test_an_iam_route_without_a_rule_is_a_startup_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    iam = Iam(make_settings(tmp_path))
    serve_iam(FastAPI(), iam, FakeAuthorizer(iam.store))  # as shipped: every route has its rule
    router = APIRouter()
    router.include_router(api.router)

    @router.get(f"{PREFIX}/debug/keys")
    async def debug_keys() -> None: ...

    monkeypatch.setattr(api, "router", router)
    with pytest.raises(RuntimeError, match=r"without a rule .*: /acs/api/v1/debug/keys"):
        serve_iam(FastAPI(), iam, FakeAuthorizer(iam.store))
