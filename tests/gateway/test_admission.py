"""Admission (app/gateway/admission.py): every route has a rule or the gateway does not start,
every route that needs a token is admitted by the one dependency, and a task route is resolved
and decided on one read of the snapshot."""

from __future__ import annotations

from typing import cast

import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute

from app.authn import Identity
from app.authz import Action, Decision, match_route
from app.authz.gate import check_routes
from app.authz.route_table import Public
from app.cluster import Agent, ClusterSnapshot, Task, build_snapshot
from app.core.config import GatewaySettings
from app.core.errors import Forbidden, NotFound
from app.gateway import app as gateway_app
from app.gateway.admission import admit
from app.gateway.deps import _target
from app.gateway.discovery import router as discovery_router
from app.gateway.logs import router as logs_router
from app.gateway.merged import router as merged_router
from app.gateway.ops import router as ops_router
from app.gateway.services import GatewayServices
from tests.cluster.support import fixture_path
from tests.support.routes import dependency_calls

ROUTERS = (merged_router, logs_router, discovery_router, ops_router)
# Answered before any credential is looked at, as Admin Router did: a 301 to `…/logs/` and the
# merged routes' 405 to HEAD (which would otherwise fall through to the master's journal).
BEFORE_AUTH = {"master_logs_slash", "_get_only"}


def test_a_route_without_a_rule_is_refused() -> None:
    router = APIRouter()

    @router.get("/system/v1/secrets/{name}")
    async def secrets(name: str) -> None: ...

    with pytest.raises(RuntimeError, match=r"without a rule .*: /system/v1/secrets/\{name\}"):
        check_routes(router.routes)


def test_the_gateway_does_not_start_with_a_route_without_a_rule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    create = gateway_app.create_app
    create(GatewaySettings.model_construct())  # as shipped: every route has its rule
    router = APIRouter()
    router.include_router(ops_router)

    @router.get("/debug/vars")
    async def debug_vars() -> None: ...

    monkeypatch.setattr(gateway_app, "ops_router", router)
    with pytest.raises(RuntimeError, match=r"without a rule .*: /debug/vars"):
        create(GatewaySettings.model_construct())


@pytest.mark.parametrize(
    "route",
    [r for router in ROUTERS for r in router.routes if isinstance(r, APIRoute)],
    ids=lambda r: f"{r.name} {r.path}",
)
def test_every_route_that_needs_a_token_is_admitted(route: APIRoute) -> None:
    matched = match_route(route.path.replace("{rest:path}", "").replace("{", "").replace("}", ""))
    public = matched is not None and isinstance(matched.rule.requirement, Public)
    admitted = _target in dependency_calls(route.dependant)
    assert admitted != (public or route.name in BEFORE_AUTH)


class FakeCluster:
    def __init__(self, snapshot: ClusterSnapshot) -> None:
        self._snapshot = snapshot
        self.reads = 0
        self.resolved: list[str] = []

    async def snapshot(self) -> ClusterSnapshot:
        self.reads += 1
        return self._snapshot

    async def resolve_agent(self, agent_id: str) -> Agent:
        self.resolved.append(agent_id)
        raise NotFound(f"agent `{agent_id}` unknown")


class OnlyRid:
    def __init__(self, rid: str) -> None:
        self.rid = rid
        self.asked: list[str] = []

    async def authorize(self, uid: str, rid: str, action: Action) -> Decision:
        self.asked.append(rid)
        return Decision.ALLOW if rid == self.rid else Decision.DENY


def _services(cluster: FakeCluster, authorizer: OnlyRid) -> GatewayServices:
    # Admission asks only these two.
    return cast(GatewayServices, type("S", (), {"cluster": cluster, "authorizer": authorizer}))


def _task_path(task: Task) -> str:
    return (
        f"/system/v1/agent/{task.agent_id}/logs/v1/range/framework/{task.framework_id}"
        f"/executor/{task.executor_id}/container/{task.container_id}"
    )


@pytest.fixture
def snapshot() -> ClusterSnapshot:
    return build_snapshot(fixture_path().read_bytes(), reader_scheme="http", reader_port=61001)


async def test_a_task_route_is_resolved_and_decided_on_one_snapshot_read(
    snapshot: ClusterSnapshot,
) -> None:
    task = next(t for t in snapshot.all_tasks if t.container_id and t.app_id)
    cluster, authorizer = (
        FakeCluster(snapshot),
        OnlyRid(f"dcos:mesos:agent:task:app_id:{task.app_id}"),
    )
    target = await admit(_task_path(task), Identity("alice"), _services(cluster, authorizer))
    assert target.task == task
    assert target.agent is not None
    assert target.agent.id == task.agent_id
    assert cluster.reads == 1
    assert cluster.resolved == []  # the agent came from the snapshot decided on


async def test_a_refused_task_route_never_resolves_its_agent(snapshot: ClusterSnapshot) -> None:
    task = next(t for t in snapshot.all_tasks if t.container_id)
    cluster, authorizer = FakeCluster(snapshot), OnlyRid("dcos:nothing")
    with pytest.raises(Forbidden, match="lacks the permission this route needs"):
        await admit(_task_path(task), Identity("bob"), _services(cluster, authorizer))
    assert cluster.resolved == []
    assert "dcos:adminrouter:ops:system-logs" in authorizer.asked


@pytest.mark.parametrize(
    "path", ["/system/v1/agent/S0/logs/../../acs", "/nowhere", "/system/v1/agent/a_b/logs/"]
)
async def test_no_rule_or_a_malformed_agent_is_404_before_any_decision(
    snapshot: ClusterSnapshot, path: str
) -> None:
    cluster, authorizer = FakeCluster(snapshot), OnlyRid("dcos:superuser")
    with pytest.raises(NotFound):
        await admit(path, Identity("carol"), _services(cluster, authorizer))
    assert authorizer.asked == []
    assert cluster.reads == 0
