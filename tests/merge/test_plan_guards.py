"""The merged planner's guards as pure logic (app/merge/plan.py): which containers a caller's
plan holds, on the merge test cluster's snapshot with a real ACL authorizer. The end-to-end
property is in test_filter_guards.py and test_merged_authz.py; these are fast enough for a
mutation run (docs/mutation-report.md)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from app.authz.acl import AclAuthorizer
from app.authz.model import Action
from app.cluster import ClusterSnapshot
from app.cluster.index import build_snapshot
from app.cluster.scheduler import SchedulerUnknown
from app.core.errors import Forbidden
from app.devcluster.mesos import SimMaster, StateDocument
from app.merge.fanin import SCHEDULER_SOURCE, MergePlan, SourceSpec
from app.merge.plan import MARATHON_UNIT, MergeScope, Narrowing, Planner, capped, split_filters
from tests.authz.conftest import FakeGrantSource
from tests.merge.support import AGENTS, DEV, DEVOPS, MARATHON, PRODUCTION, WEB, sim_cluster


class Snapshots:
    def __init__(self, snapshot: ClusterSnapshot) -> None:
        self.current = snapshot
        self.calls = 0

    async def snapshot(self) -> ClusterSnapshot:
        self.calls += 1
        return self.current


def snapshot() -> ClusterSnapshot:
    body = StateDocument.from_cluster(sim_cluster()).state(SimMaster("127.0.0.85", 5050))
    return build_snapshot(body, reader_scheme="http", reader_port=61001)


def authorizer(**grants: list[str]) -> AclAuthorizer:
    source = FakeGrantSource()
    for uid, rids in grants.items():
        for rid in rids:
            source.grant(uid, rid, Action.READ)
    return AclAuthorizer(source)


DEV_GRANT = {"dev": ["dcos:mesos:agent:task:app_id:/dev"]}
PROD_ROLE = {"prodrole": ["dcos:mesos:agent:framework:role:prod"]}


def plan(
    scope: MergeScope, uid: str, filters: list[tuple[str, str]] = (), **grants: list[str]
) -> MergePlan:
    narrowing, forwarded = split_filters(list(filters))
    planner = Planner(
        scope, narrowing, uid, authorizer(**grants), Snapshots(snapshot()), forwarded=forwarded
    )
    return asyncio.run(planner.plan())


def containers(p: MergePlan) -> dict[str, tuple[str, ...]]:
    return {agent: spec.containers for agent, spec in p.sources.items()}


@pytest.mark.parametrize(
    ("filters", "forwarded"),
    [
        ([("CONTAINER_ID", "a"), ("CONTAINER_ID", "b")], ()),
        ([("EXECUTOR_ID", "e"), ("FRAMEWORK_ID", "f"), ("AGENT_ID", "s")], ()),
        ([("STREAM", "STDOUT"), ("CONTAINER_ID", "a")], (("STREAM", "STDOUT"),)),
        ([("TEST_RUN", "x"), ("TEST_RUN", "y")], (("TEST_RUN", "x"), ("TEST_RUN", "y"))),
    ],
)
def test_filters_on_owned_fields_narrow_and_are_never_forwarded(
    filters: list[tuple[str, str]], forwarded: tuple[tuple[str, str], ...]
) -> None:
    narrowing, got = split_filters(filters)
    assert got == forwarded
    owned = {name for name, _ in filters if name not in {n for n, _ in forwarded}}
    assert set(narrowing.values) == owned


def test_a_plan_names_each_agent_and_its_reader_and_keeps_the_forwarded_filters() -> None:
    narrowing, forwarded = split_filters([("STREAM", "STDERR"), ("CONTAINER_ID", DEV.container)])
    fake = FakeGrantSource()
    fake.grant("dev", "dcos:mesos:agent:task:app_id:/dev")
    planner = Planner(
        MergeScope("role", "dev"),
        narrowing,
        "dev",
        AclAuthorizer(fake),
        Snapshots(snapshot()),
        forwarded=forwarded,
    )
    assert planner.forwarded == (("STREAM", "STDERR"),)
    spec = asyncio.run(planner.plan()).sources[AGENTS[0]]
    assert spec.agent_id == AGENTS[0]
    assert spec.reader_url == "http://127.0.0.81:61001"


def test_a_mixed_container_filter_keeps_only_the_callers_own_container() -> None:
    mixed = [("CONTAINER_ID", WEB[1].container), ("CONTAINER_ID", DEVOPS.container)]
    got = plan(MergeScope("role", "prod"), "prodrole", mixed, **PROD_ROLE)
    assert containers(got) == {AGENTS[1]: (WEB[1].container,)}
    mixed = [("CONTAINER_ID", DEV.container), ("CONTAINER_ID", WEB[0].container)]
    got = plan(MergeScope("role", "dev"), "dev", mixed, **DEV_GRANT)
    assert containers(got) == {AGENTS[0]: (DEV.container,)}


def test_every_owned_field_narrows_and_fields_are_anded() -> None:
    scope, role = MergeScope("app", "/prod"), PROD_ROLE
    by_executor = [("EXECUTOR_ID", WEB[2].executor)]
    assert containers(plan(scope, "prodrole", by_executor, **role)) == {
        AGENTS[2]: (WEB[2].container,)
    }
    by_agent = [("AGENT_ID", AGENTS[0])]
    assert containers(plan(scope, "prodrole", by_agent, **role)) == {AGENTS[0]: (WEB[0].container,)}
    assert plan(scope, "prodrole", [("FRAMEWORK_ID", "other")], **role).sources == {}
    assert len(plan(scope, "prodrole", [("FRAMEWORK_ID", MARATHON)], **role).sources) == 3
    anded = [("AGENT_ID", AGENTS[0]), ("EXECUTOR_ID", WEB[2].executor)]
    assert plan(scope, "prodrole", anded, **role).sources == {}


def test_only_readable_tasks_are_planned() -> None:
    assert containers(plan(MergeScope("role", "dev"), "dev", **DEV_GRANT)) == {
        AGENTS[0]: (DEV.container,)
    }
    role_prod = containers(plan(MergeScope("role", "prod"), "prodrole", **PROD_ROLE))
    assert role_prod == {
        AGENTS[0]: (WEB[0].container,),
        AGENTS[1]: (WEB[1].container,),
        AGENTS[2]: tuple(sorted((WEB[2].container, PRODUCTION.container))),
    }
    # A grant on one task's app covers it and nothing beside it on the agent.
    web = {"web": ["dcos:mesos:agent:task:app_id:/prod/web"]}
    assert containers(plan(MergeScope("role", "prod"), "web", **web)) == {
        AGENTS[i]: (WEB[i].container,) for i in range(3)
    }


def test_app_scope_covers_descendants_on_slash_boundaries_only() -> None:
    admin = {"admin": ["dcos:adminrouter:ops:system-logs"]}
    got = containers(plan(MergeScope("app", "/dev"), "admin", **admin))
    assert got == {AGENTS[0]: (DEV.container,)}  # never /devops
    got = containers(plan(MergeScope("app", "/prod"), "admin", **admin))
    assert PRODUCTION.container not in {c for cs in got.values() for c in cs}
    assert containers(plan(MergeScope("app", "/dev/worker"), "admin", **admin)) == {
        AGENTS[0]: (DEV.container,)
    }
    assert MergeScope("app", "/prod").covers(snapshot().task(WEB[0].task_id))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("scope", "uid", "grants"),
    [
        (MergeScope("role", "prod"), "dev", DEV_GRANT),
        (MergeScope("app", "/devops"), "dev", DEV_GRANT),
        (MergeScope("app", "/no/such"), "nobody", {}),
        (MergeScope("role", "none"), "nobody", {}),
    ],
)
def test_no_readable_task_and_no_whole_scope_grant_is_403(
    scope: MergeScope, uid: str, grants: dict[str, list[str]]
) -> None:
    with pytest.raises(Forbidden) as caught:
        plan(scope, uid, **grants)
    assert str(caught.value).startswith(f"`{uid}` may read no task of {scope.describe()}")


def test_a_whole_scope_grant_makes_an_empty_scope_empty_not_403() -> None:
    role = {"r": ["dcos:mesos:agent:framework:role:empty"]}
    assert plan(MergeScope("role", "empty"), "r", **role).sources == {}
    app = {"a": ["dcos:mesos:agent:task:app_id:/empty"]}
    assert plan(MergeScope("app", "/empty"), "a", **app).sources == {}
    # ...and a grant on another role is no grant on this one.
    with pytest.raises(Forbidden):
        plan(MergeScope("role", "empty"), "a", **app)


def test_a_plan_is_recomputed_only_when_the_snapshot_changes() -> None:
    source = Snapshots(snapshot())
    fake = FakeGrantSource()
    fake.grant("dev", "dcos:mesos:agent:task:app_id:/dev")
    planner = Planner(MergeScope("role", "dev"), Narrowing({}), "dev", AclAuthorizer(fake), source)

    async def twice() -> tuple[MergePlan, MergePlan, MergePlan]:
        first = await planner.plan()
        second = await planner.plan()
        source.current = snapshot()
        return first, second, await planner.plan()

    first, second, third = asyncio.run(twice())
    assert second is first
    assert third is not first
    assert containers(third) == containers(first)


def test_a_revoke_is_planned_on_the_next_access_epoch_with_the_same_snapshot() -> None:
    # A merged stream narrows when a grant is revoked (app.authz.access moves the epoch);
    # the cluster need not change for that.
    epoch = [0]
    fake = FakeGrantSource()
    fake.grant("dev", "dcos:mesos:agent:task:app_id:/dev")
    planner = Planner(
        MergeScope("role", "dev"),
        Narrowing({}),
        "dev",
        AclAuthorizer(fake),
        Snapshots(snapshot()),
        access_epoch=lambda: epoch[0],
    )

    async def revoked() -> MergePlan:
        assert DEV.container in str(containers(await planner.plan()))
        fake.revoke("dev", "dcos:mesos:agent:task:app_id:/dev")
        epoch[0] += 1
        return await planner.plan()

    with pytest.raises(Forbidden):
        asyncio.run(revoked())


def test_capped_keeps_streaming_agents_first_and_names_the_rest() -> None:
    full = plan(MergeScope("app", "/prod"), "prodrole", **PROD_ROLE)
    assert capped(full, 3) is full
    two = capped(full, 2, keep=(AGENTS[2],))
    assert sorted(two.sources) == [AGENTS[0], AGENTS[2]]
    assert two.note is not None
    assert AGENTS[1] in two.note
    assert "limit of 2" in two.note
    three = capped(full, 1)
    assert three.note is not None
    assert three.note.endswith(f"{AGENTS[1]}, {AGENTS[2]}")


# `include=scheduler` -------------------------------------------------------------------------
# The caller's right to read the Marathon leader's whole journal is decided before the
# planner (app/gateway/merged.py `_may_read_scheduler`); the planner decides where that read
# goes (the leader's node, from the snapshot alone), what it reads (Marathon's unit, no task
# container) and which lines it keeps (those naming the scope's apps).


def led_from(host: str) -> ClusterSnapshot:
    """The merge cluster's snapshot with Marathon registered from `host`."""
    cluster = sim_cluster()
    cluster.frameworks = [replace(f, scheduler_host=host) for f in cluster.frameworks]
    body = StateDocument.from_cluster(cluster).state(SimMaster("127.0.0.85", 5050))
    return build_snapshot(body, reader_scheme="http", reader_port=61001)


def scheduler_planner(scope: MergeScope, source: Snapshots, *, asked: bool = True) -> Planner:
    grants = authorizer(**DEV_GRANT, **PROD_ROLE)
    uid = "prodrole" if scope.value.startswith("/prod") or scope.value == "prod" else "dev"
    return Planner(scope, Narrowing({}), uid, grants, source, scheduler=asked)


@pytest.mark.parametrize(
    ("scope", "names"),
    [
        (MergeScope("app", "/dev/worker"), ("/dev/worker",)),
        (MergeScope("app", "/prod"), ("/prod",)),
        # Every app of the role, sorted, whichever of them the caller's tasks are.
        (MergeScope("role", "dev"), ("/dev/worker", "/devops/api")),
        (MergeScope("role", "prod"), ("/prod/web", "/production/api")),
    ],
)
@pytest.mark.parametrize("host", ["127.0.0.82", "127.0.0.85"], ids=["agent", "master"])
def test_include_scheduler_reads_marathons_unit_where_it_leads_for_the_scopes_apps(
    scope: MergeScope, names: tuple[str, ...], host: str
) -> None:
    plain = asyncio.run(scheduler_planner(scope, Snapshots(led_from(host)), asked=False).plan())
    assert SCHEDULER_SOURCE not in plain.sources  # only when asked for
    p = asyncio.run(scheduler_planner(scope, Snapshots(led_from(host))).plan())
    spec = p.sources[SCHEDULER_SOURCE]
    assert spec == SourceSpec(
        SCHEDULER_SOURCE, f"http://{host}:61001", (), unit=MARATHON_UNIT, names=names
    )
    assert p.note == ""
    assert set(p.sources) - {SCHEDULER_SOURCE}  # the tasks' own sources stay


def test_an_unknown_marathon_leader_is_503_at_first_then_a_note_during_a_failover() -> None:
    # 127.0.0.1 is no node of this cluster: never read, whatever Marathon claims.
    with pytest.raises(SchedulerUnknown) as caught:
        asyncio.run(
            scheduler_planner(MergeScope("role", "dev"), Snapshots(led_from("127.0.0.1"))).plan()
        )
    assert caught.value.status == 503
    source = Snapshots(led_from("127.0.0.82"))
    planner = scheduler_planner(MergeScope("role", "dev"), source)
    first = asyncio.run(planner.plan())
    assert SCHEDULER_SOURCE in first.sources
    source.current = led_from("127.0.0.1")
    during = asyncio.run(planner.plan())
    assert SCHEDULER_SOURCE not in during.sources
    assert during.note.startswith("Marathon's lines left out: marathon leader is unknown")
    assert set(during.sources) == set(first.sources) - {SCHEDULER_SOURCE}
    source.current = led_from("127.0.0.85")
    back = asyncio.run(planner.plan())
    assert back.sources[SCHEDULER_SOURCE].reader_url == "http://127.0.0.85:61001"
    assert back.note == ""
