"""The embedded authorizer over a fake grant source: semantics, caching, revocation, audit."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterable

import pytest

from app.authz.acl import AclAuthorizer
from app.authz.audit import AUDIT_LOGGER
from app.authz.model import SUPERUSER_RID, Action, Decision, Grant
from tests.authz.conftest import FakeGrantSource

TASK = "dcos:mesos:agent:task:app_id"
SYSTEM_LOGS = "dcos:adminrouter:ops:system-logs"
ALLOW, DENY = Decision.ALLOW, Decision.DENY


async def decide(source: FakeGrantSource, uid: str, rid: str, action: Action) -> Decision:
    return await AclAuthorizer(source).authorize(uid, rid, action)


@pytest.mark.parametrize(
    ("held", "requested", "expected"),
    [
        (Action.FULL, Action.READ, ALLOW),
        (Action.FULL, Action.CREATE, ALLOW),
        (Action.FULL, Action.UPDATE, ALLOW),
        (Action.FULL, Action.DELETE, ALLOW),
        (Action.FULL, Action.FULL, ALLOW),
        (Action.READ, Action.READ, ALLOW),
        (Action.READ, Action.FULL, DENY),
        (Action.READ, Action.UPDATE, DENY),
        (Action.READ, Action.DELETE, DENY),
        (Action.CREATE, Action.READ, DENY),
        (Action.UPDATE, Action.READ, DENY),
        (Action.DELETE, Action.READ, DENY),
        (Action.DELETE, Action.DELETE, ALLOW),
    ],
)
async def test_full_implies_every_action_and_nothing_else_implies_another(
    source: FakeGrantSource, held: Action, requested: Action, expected: Decision
) -> None:
    source.grant("alice", SYSTEM_LOGS, held)
    assert await decide(source, "alice", SYSTEM_LOGS, requested) is expected


@pytest.mark.parametrize(
    ("grant", "requested", "expected"),
    [
        (f"{TASK}:/dev", f"{TASK}:/dev", ALLOW),
        (f"{TASK}:/dev", f"{TASK}:/dev/api", ALLOW),
        (TASK, f"{TASK}:/prod/web", ALLOW),
        (f"{TASK}:/dev", f"{TASK}:/devops", DENY),
        (f"{TASK}:/dev", f"{TASK}:/dev/../prod", DENY),
        (f"{TASK}:/dev", f"{TASK}:/dev/", DENY),
        (f"{TASK}:/dev", f"{TASK}:/dev%2Fapi", DENY),
        (f"{TASK}:/dev", f"{TASK}:/DEV/api", DENY),
        (f"{TASK}:/dev/api", f"{TASK}:/dev", DENY),
        (f"{TASK}:/dev/", f"{TASK}:/dev/api", DENY),  # malformed grants are ignored
        (f"{TASK}:/Dev", f"{TASK}:/dev", DENY),
        (f"{TASK}:%2Fdev", f"{TASK}:/dev", DENY),
        ("dcos:superuser:extra", f"{TASK}:/dev", DENY),
    ],
)
async def test_hierarchy(
    source: FakeGrantSource, grant: str, requested: str, expected: Decision
) -> None:
    source.grant("alice", grant)
    assert await decide(source, "alice", requested, Action.READ) is expected


@pytest.mark.parametrize(
    ("action", "expected"),
    [(Action.FULL, ALLOW), (Action.READ, DENY), (Action.UPDATE, DENY)],
)
@pytest.mark.parametrize(
    "requested",
    [SYSTEM_LOGS, f"{TASK}:/anything", "dcos", "dcos:x:/Malformed/../%2F"],
)
async def test_superuser_full_grants_everything_but_only_full(
    source: FakeGrantSource, requested: str, action: Action, expected: Decision
) -> None:
    source.grant("root", SUPERUSER_RID, action)
    for wanted in Action:
        assert await decide(source, "root", requested, wanted) is expected


async def test_superuser_through_a_group(source: FakeGrantSource) -> None:
    source.grant_group("superusers", SUPERUSER_RID, Action.FULL)
    source.add_member("superusers", "carol")
    assert await decide(source, "carol", SYSTEM_LOGS, Action.DELETE) is ALLOW
    assert await decide(source, "dave", SYSTEM_LOGS, Action.READ) is DENY


async def test_grants_inherited_from_groups(source: FakeGrantSource) -> None:
    source.grant_group("dev-team", f"{TASK}:/dev", Action.READ)
    source.add_member("dev-team", "alice")
    assert await decide(source, "alice", f"{TASK}:/dev/api", Action.READ) is ALLOW
    assert await decide(source, "alice", f"{TASK}:/prod", Action.READ) is DENY
    assert await decide(source, "bob", f"{TASK}:/dev/api", Action.READ) is DENY


@pytest.mark.parametrize("uid", ["nobody", "", "ALICE", "alice ", "dev-team"])
async def test_default_deny(source: FakeGrantSource, uid: str) -> None:
    source.grant("alice", SYSTEM_LOGS, Action.FULL)
    source.grant_group("dev-team", SYSTEM_LOGS, Action.FULL)
    for action in Action:
        assert await decide(source, uid, SYSTEM_LOGS, action) is DENY


async def test_empty_store_denies(source: FakeGrantSource) -> None:
    assert await decide(source, "alice", SYSTEM_LOGS, Action.READ) is DENY


async def test_decisions_and_grants_are_cached_per_generation(source: FakeGrantSource) -> None:
    source.grant("alice", f"{TASK}:/dev")
    authz = AclAuthorizer(source)
    for _ in range(3):
        assert await authz.authorize("alice", f"{TASK}:/dev/a", Action.READ) is ALLOW
        assert await authz.authorize("alice", f"{TASK}:/prod", Action.READ) is DENY
    assert source.lookups == ["alice"]
    await authz.authorize("bob", f"{TASK}:/dev/a", Action.READ)
    assert source.lookups == ["alice", "bob"]


async def test_a_revoke_is_seen_by_the_very_next_call(source: FakeGrantSource) -> None:
    source.grant("alice", f"{TASK}:/dev")
    authz = AclAuthorizer(source)
    assert await authz.authorize("alice", f"{TASK}:/dev/a", Action.READ) is ALLOW
    source.revoke("alice", f"{TASK}:/dev")
    assert await authz.authorize("alice", f"{TASK}:/dev/a", Action.READ) is DENY


async def test_leaving_a_group_is_seen_by_the_very_next_call(source: FakeGrantSource) -> None:
    source.grant_group("superusers", SUPERUSER_RID, Action.FULL)
    source.add_member("superusers", "carol")
    authz = AclAuthorizer(source)
    assert await authz.authorize("carol", SYSTEM_LOGS, Action.READ) is ALLOW
    source.remove_member("superusers", "carol")
    assert await authz.authorize("carol", SYSTEM_LOGS, Action.READ) is DENY


async def test_a_new_grant_is_seen_by_the_very_next_call(source: FakeGrantSource) -> None:
    authz = AclAuthorizer(source)
    assert await authz.authorize("alice", SYSTEM_LOGS, Action.READ) is DENY
    source.grant("alice", SYSTEM_LOGS)
    assert await authz.authorize("alice", SYSTEM_LOGS, Action.READ) is ALLOW


class _RevokedDuringLookup(FakeGrantSource):
    """Changes the store while a lookup is in flight (another process writing)."""

    def __init__(self) -> None:
        super().__init__()
        self.revoke_next = False

    async def grants_for(self, uid: str) -> Iterable[Grant]:
        grants = await super().grants_for(uid)
        if self.revoke_next:
            self.revoke_next = False
            self.revoke(uid, SYSTEM_LOGS)
        await asyncio.sleep(0)
        return grants


async def test_grants_read_before_a_concurrent_change_are_not_kept() -> None:
    source = _RevokedDuringLookup()
    source.grant("alice", SYSTEM_LOGS)
    source.revoke_next = True
    authz = AclAuthorizer(source)
    # This lookup raced the revoke; the next call must not be served from it.
    await authz.authorize("alice", SYSTEM_LOGS, Action.READ)
    assert await authz.authorize("alice", SYSTEM_LOGS, Action.READ) is DENY


async def test_bounded_caches_evict_and_still_decide(source: FakeGrantSource) -> None:
    source.grant("alice", f"{TASK}:/dev")
    authz = AclAuthorizer(source, max_users=1, max_decisions=2)
    for i in range(5):
        assert await authz.authorize("alice", f"{TASK}:/dev/{i}", Action.READ) is ALLOW
        assert await authz.authorize(f"user{i}", f"{TASK}:/dev/{i}", Action.READ) is DENY
    assert await authz.authorize("alice", f"{TASK}:/dev/0", Action.READ) is ALLOW


def test_cache_sizes_must_be_positive(source: FakeGrantSource) -> None:
    with pytest.raises(ValueError, match="cache sizes"):
        AclAuthorizer(source, max_decisions=0)


async def test_every_decision_is_audited_in_admin_router_shape(
    source: FakeGrantSource, caplog: pytest.LogCaptureFixture
) -> None:
    source.grant("alice", f"{TASK}:/dev")
    source.grant("root", SUPERUSER_RID, Action.FULL)
    authz = AclAuthorizer(source)
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)
    await authz.authorize("alice", f"{TASK}:/dev/api", Action.READ)
    await authz.authorize("alice", f"{TASK}:/dev/api", Action.READ)  # cached: audited again
    await authz.authorize("alice", SYSTEM_LOGS, Action.READ)
    await authz.authorize("root", SYSTEM_LOGS, Action.FULL)
    await authz.authorize("alice", f"{TASK}:/dev/../x", Action.READ)
    lines = [r.getMessage() for r in caplog.records if r.name == AUDIT_LOGGER]
    assert all(r.levelno == logging.INFO for r in caplog.records if r.name == AUDIT_LOGGER)
    allowed = (
        f'type=audit object={TASK}:/dev/api action=read result=allow reason="grant {TASK}:/dev '
        'read" uid=alice'
    )
    assert lines == [
        allowed,
        allowed,
        f'type=audit object={SYSTEM_LOGS} action=read result=deny reason="no matching grant" '
        "uid=alice",
        f'type=audit object={SYSTEM_LOGS} action=full result=allow reason="superuser" uid=root',
        f"type=audit object={TASK}:/dev/../x action=read result=deny "
        'reason="malformed resource id" uid=alice',
    ]


async def test_audit_lines_cannot_be_forged_by_a_uid_or_rid(
    source: FakeGrantSource, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=AUDIT_LOGGER)
    uid = 'mallory result=allow\ntype=audit object=dcos:superuser result=allow uid="root'
    await decide(source, uid, 'x" result=allow', Action.READ)
    (line,) = [r.getMessage() for r in caplog.records if r.name == AUDIT_LOGGER]
    assert "\n" not in line
    fields = [(k, json.loads(v) if v.startswith('"') else v) for k, v in _FIELD.findall(line)]
    assert fields == [
        ("type", "audit"),
        ("object", 'x" result=allow'),
        ("action", "read"),
        ("result", "deny"),
        ("reason", "malformed resource id"),
        ("uid", uid),
    ]
    # ...and those six fields are the whole line: nothing was smuggled between them
    assert " ".join(f"{k}={v}" for k, v in _FIELD.findall(line)) == line


# key=value, where a value is either plain or a JSON string
_FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^\s"]+)')


async def test_superuser_read_is_an_ordinary_grant_on_its_own_rid(source: FakeGrantSource) -> None:
    source.grant("alice", SUPERUSER_RID, Action.READ)
    assert await decide(source, "alice", SUPERUSER_RID, Action.READ) is ALLOW
    assert await decide(source, "alice", SUPERUSER_RID, Action.FULL) is DENY
    assert await decide(source, "alice", SYSTEM_LOGS, Action.READ) is DENY


async def test_a_full_grant_on_an_ancestor_covers_the_superuser_rid(
    source: FakeGrantSource,
) -> None:
    # `dcos` full is superuser in all but name: hierarchy puts every dcos:* rid below it.
    source.grant("alice", "dcos", Action.FULL)
    assert await decide(source, "alice", SUPERUSER_RID, Action.FULL) is ALLOW
