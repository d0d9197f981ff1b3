"""The route -> permission table: matching, task checks, any-of decisions, Markdown."""

from __future__ import annotations

import re

import pytest

from app.authz.acl import AclAuthorizer
from app.authz.model import SUPERUSER_RID, Action, Decision
from app.authz.route_table import (
    ROUTES,
    SYSTEM_LOGS,
    SYSTEM_LOGS_RID,
    AnyOf,
    Authenticated,
    Public,
    Requirement,
    ResourceCheck,
    RouteRule,
    TaskAccess,
    authorize_any,
    match_route,
    requirements_for_task,
    routes_markdown,
)
from app.core.errors import Unavailable
from tests.authz.conftest import FakeGrantSource

TASK = "dcos:mesos:agent:task:app_id"
SANDBOX = "dcos:mesos:agent:sandbox:app_id"
ROLE = "dcos:mesos:agent:framework:role"
WHOLE_NODE = AnyOf((ResourceCheck(SYSTEM_LOGS_RID, Action.READ),))
IAM_ADMIN = AnyOf((ResourceCheck(SUPERUSER_RID, Action.FULL),))
FEC = "framework/f-1/executor/e.1/container/c-1.c-2"
RUN = "v2/task/frameworks/f-1/executors/e.1/runs/c-1"

ROUTE_CASES: list[tuple[str, Requirement]] = [
    (f"/system/v1/agent/S0/logs/v1/range/{FEC}", TaskAccess()),
    (f"/system/v1/agent/S0/logs/v1/range/{FEC}/download", TaskAccess()),
    (f"/system/v1/agent/S0/logs/v1/stream/{FEC}", TaskAccess()),
    (f"/system/v1/agent/S0/logs/{RUN}/stdout", TaskAccess()),
    (f"/system/v1/agent/S0/logs/{RUN}/tasks/pod.web/stderr/download", TaskAccess()),
    (f"/system/v1/agent/S0/logs/{RUN}/files/browse", TaskAccess()),
    (f"/system/v1/logs/v1/range/{FEC}", TaskAccess()),
    (f"/system/v1/logs/v1/range/{FEC}/download", TaskAccess()),
    (f"/system/v1/logs/v1/stream/{FEC}", TaskAccess()),
    (f"/system/v1/logs/{RUN}/stdout", TaskAccess()),
    ("/system/v1/logs/v2/task/web.123", TaskAccess()),
    ("/system/v1/logs/v2/task/web.123/file/stderr/download", TaskAccess()),
    ("/system/v1/logs/v2/task/web.123/browse", TaskAccess()),
    # whole journals, including near misses of the task routes
    ("/system/v1/agent/S0/logs/v1/range/", WHOLE_NODE),
    ("/system/v1/agent/S0/logs/v1/stream/", WHOLE_NODE),
    ("/system/v1/agent/S0/logs/v1/range/download", WHOLE_NODE),
    ("/system/v1/agent/S0/logs/v1/fields/UNIT", WHOLE_NODE),
    ("/system/v1/agent/S0/logs/v2/component", WHOLE_NODE),
    ("/system/v1/agent/S0/logs/v2/component/dcos-mesos-slave.service", WHOLE_NODE),
    ("/system/v1/agent/S0/logs/v1/range/framework/f/executor/e", WHOLE_NODE),
    (f"/system/v1/agent/S0/logs/v1/range/{FEC}/extra", WHOLE_NODE),
    (f"/system/v1/agent/S0/logs/v1/follow/{FEC}", WHOLE_NODE),
    ("/system/v1/agent/S0/logs", WHOLE_NODE),
    ("/system/v1/logs/v1/range/", WHOLE_NODE),
    ("/system/v1/logs/v2/component/", WHOLE_NODE),
    ("/system/v1/logs", WHOLE_NODE),
    ("/system/v1/leader/mesos/logs/v2/component/dcos-mesos-master.service", WHOLE_NODE),
    ("/system/v1/leader/mesos/logs/v2/task/web.123", WHOLE_NODE),
    ("/system/v1/leader/marathon/logs/v1/range/", WHOLE_NODE),
    # IAM
    ("/acs/api/v1/auth/login", Public()),
    ("/acs/api/v1/auth/jwks", Public()),
    ("/acs/api/v1/users", IAM_ADMIN),
    ("/acs/api/v1/users/alice", IAM_ADMIN),
    ("/acs/api/v1/users/alice/permissions", IAM_ADMIN),
    ("/acs/api/v1/groups/superusers/users/alice", IAM_ADMIN),
    ("/acs/api/v1/acls/dcos:adminrouter:ops:system-logs/users/alice/read", IAM_ADMIN),
    # authenticated only
    ("/capabilities", Authenticated()),
    ("/dcos-metadata/ui-config.json", Authenticated()),
    ("/mesos/master/state", Authenticated()),
    ("/mesos/master/state.json", Authenticated()),
    ("/mesos/master/state-summary", Authenticated()),
    ("/slave/S0/state.json", Authenticated()),
    ("/agent/S0/state.json", Authenticated()),
]


@pytest.mark.parametrize(("path", "requirement"), ROUTE_CASES)
def test_match_route(path: str, requirement: Requirement) -> None:
    match = match_route(path)
    assert match is not None
    assert match.rule.requirement == requirement


def test_task_route_parameters() -> None:
    match = match_route(f"/system/v1/agent/a1-S0/logs/v1/stream/{FEC}")
    assert match is not None
    assert dict(match.params) == {
        "agent_id": "a1-S0",
        "framework_id": "f-1",
        "executor_id": "e.1",
        "container_id": "c-1.c-2",
    }
    match = match_route(f"/system/v1/logs/{RUN}/tasks/pod.web/stdout")
    assert match is not None
    assert match.params["file"] == "/tasks/pod.web/stdout"


@pytest.mark.parametrize(
    "path",
    [
        "",
        "capabilities",
        "/",
        "/unknown",
        "/capabilities/",
        "/Capabilities",
        "/system/v1/logsX",
        "/system/v1/agent//logs/v1/range/",
        "/system/v1/agent/S0/logsv1",
        "/acs/api/v1/usersX",
        "/acs/api/v1/auth/login/",
        "/mesos/master/state-summary.json",
        "/slave/S0/S1/state.json",
        # dot segments and empty segments never match anything, whatever follows
        "/system/v1/logs/v1/range/framework/../../../v1/range/",
        f"/system/v1/agent/S0/logs/v1/range/{FEC}/..",
        "/system/v1/agent/S0/logs/v1/range/framework/./executor/e/container/c",
        "/system/v1/agent/../../capabilities",
        "/system/v1/logs/./v1/range/",
        "/system/v1/logs//v1/range/",
        "//capabilities",
        "/capabilities/..",
    ],
)
def test_unmatched_paths(path: str) -> None:
    assert match_route(path) is None


@pytest.mark.parametrize("rule", ROUTES, ids=lambda r: r.pattern)
def test_every_rule_matches_its_own_example_and_is_reached_first(rule: RouteRule) -> None:
    example = re.sub(r"\{[a-z_]+:path\}", "/x", re.sub(r"\{[a-z_]+\}", "v", rule.pattern))
    match = match_route(example)
    assert match is not None
    assert match.rule is rule


@pytest.mark.parametrize(
    ("app_id", "role", "expected"),
    [
        (
            "/prod/web",
            "slave_public",
            [SYSTEM_LOGS_RID, f"{TASK}:/prod/web", f"{ROLE}:slave_public", f"{SANDBOX}:/prod/web"],
        ),
        ("/prod/web", None, [SYSTEM_LOGS_RID, f"{TASK}:/prod/web", f"{SANDBOX}:/prod/web"]),
        (None, "dev", [SYSTEM_LOGS_RID, f"{ROLE}:dev"]),
        (None, "dev/backend", [SYSTEM_LOGS_RID, f"{ROLE}:dev/backend"]),
        (None, None, [SYSTEM_LOGS_RID]),
        ("", "", [SYSTEM_LOGS_RID]),
        ("/", None, [SYSTEM_LOGS_RID]),
        ("prod/web", None, [SYSTEM_LOGS_RID]),  # relative: a second spelling of /prod/web
        ("/prod/web/", None, [SYSTEM_LOGS_RID]),
        ("/prod/../dev", None, [SYSTEM_LOGS_RID]),
        ("/Prod", None, [SYSTEM_LOGS_RID]),
        ("/prod%2Fweb", None, [SYSTEM_LOGS_RID]),
        ("/prod:web", None, [SYSTEM_LOGS_RID]),
        (None, "*", [SYSTEM_LOGS_RID]),
        (None, "Dev", [SYSTEM_LOGS_RID]),
        (None, "dev:x", [SYSTEM_LOGS_RID]),  # would sit below role `dev`
        (None, "/dev", [SYSTEM_LOGS_RID, f"{ROLE}:/dev"]),
    ],
)
def test_requirements_for_task(app_id: str | None, role: str | None, expected: list[str]) -> None:
    checks = requirements_for_task(app_id, role)
    assert [c.rid for c in checks] == expected
    assert {c.action for c in checks} == {Action.READ}


@pytest.mark.parametrize(
    ("grants", "expected"),
    [
        ([(SYSTEM_LOGS_RID, Action.READ)], Decision.ALLOW),
        ([(SYSTEM_LOGS_RID, Action.FULL)], Decision.ALLOW),
        ([(SUPERUSER_RID, Action.FULL)], Decision.ALLOW),
        ([(f"{TASK}:/prod", Action.READ)], Decision.ALLOW),
        ([(TASK, Action.READ)], Decision.ALLOW),
        ([(f"{SANDBOX}:/prod/web", Action.READ)], Decision.ALLOW),
        ([(f"{ROLE}:slave_public", Action.READ)], Decision.ALLOW),
        ([(ROLE, Action.FULL)], Decision.ALLOW),
        ([], Decision.DENY),
        ([(SYSTEM_LOGS_RID, Action.UPDATE)], Decision.DENY),
        ([(f"{TASK}:/prod/web/api", Action.READ)], Decision.DENY),
        ([(f"{TASK}:/prod/webapp", Action.READ)], Decision.DENY),
        ([(f"{TASK}:/dev", Action.READ)], Decision.DENY),
        ([(f"{ROLE}:other", Action.READ)], Decision.DENY),
        ([("dcos:adminrouter:ops:slave", Action.FULL)], Decision.DENY),
        ([("dcos:mesos:agent:executor:app_id", Action.FULL)], Decision.DENY),
    ],
)
async def test_task_logs_any_of(
    source: FakeGrantSource, grants: list[tuple[str, Action]], expected: Decision
) -> None:
    for rid, action in grants:
        source.grant("alice", rid, action)
    checks = requirements_for_task("/prod/web", "slave_public")
    assert await authorize_any(AclAuthorizer(source), "alice", checks) is expected


async def test_an_unresolved_task_is_open_to_system_logs_only(source: FakeGrantSource) -> None:
    source.grant("alice", TASK, Action.FULL)
    source.grant("ops", SYSTEM_LOGS_RID)
    authz = AclAuthorizer(source)
    checks = requirements_for_task(None, None)
    assert await authorize_any(authz, "alice", checks) is Decision.DENY
    assert await authorize_any(authz, "ops", checks) is Decision.ALLOW


async def test_no_checks_deny(source: FakeGrantSource) -> None:
    source.grant("root", SUPERUSER_RID, Action.FULL)
    assert await authorize_any(AclAuthorizer(source), "root", ()) is Decision.DENY


class _Flaky:
    """Allows `allow`, raises Unavailable for `down`, denies the rest; records the calls."""

    def __init__(self, allow: set[str], down: set[str]) -> None:
        self.allow, self.down, self.calls = allow, down, list[str]()

    async def authorize(self, uid: str, rid: str, action: Action) -> Decision:
        self.calls.append(rid)
        if rid in self.down:
            raise Unavailable(f"IAM policy query failed: {rid}")
        return Decision.ALLOW if rid in self.allow else Decision.DENY


A, B, C = (ResourceCheck(f"dcos:{x}", Action.READ) for x in "abc")


async def test_any_of_stops_at_the_first_allow() -> None:
    authz = _Flaky(allow={"dcos:a"}, down=set())
    assert await authorize_any(authz, "u", (A, B, C)) is Decision.ALLOW
    assert authz.calls == ["dcos:a"]


async def test_any_of_an_outage_does_not_hide_a_later_allow() -> None:
    authz = _Flaky(allow={"dcos:c"}, down={"dcos:a"})
    assert await authorize_any(authz, "u", (A, B, C)) is Decision.ALLOW


async def test_any_of_an_outage_with_no_allow_fails_closed() -> None:
    authz = _Flaky(allow=set(), down={"dcos:b", "dcos:c"})
    with pytest.raises(Unavailable, match="dcos:b"):
        await authorize_any(authz, "u", (A, B, C))
    assert authz.calls == ["dcos:a", "dcos:b", "dcos:c"]


def test_markdown_has_one_row_per_rule_in_order() -> None:
    text = routes_markdown()
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == [rule.pattern for rule in ROUTES]
    assert text.splitlines()[:2] == ["| Route | Who may call it | What |", "|---|---|---|"]
    assert all(row.count(" | ") == 2 for row in rows)
    first = rows[0]
    assert f"`{SYSTEM_LOGS_RID}` read" in first
    assert f"`{TASK}:<app>`" in first
    assert "`dcos:superuser` full" in text
    assert ResourceCheck(SYSTEM_LOGS_RID, Action.READ) == SYSTEM_LOGS
