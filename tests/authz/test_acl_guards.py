"""The ACL authorizer from the attacker's side: a grant revoked while a decision is being made
is not cached as an allow afterwards (a verdict from older grants never lands in the caches of
a newer generation), and one caller's decision is never another's."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from app.authz.acl import AclAuthorizer
from app.authz.model import Action, Decision, Grant
from tests.authz.conftest import FakeGrantSource

RID = "dcos:adminrouter:ops:system-logs"


class SlowSource(FakeGrantSource):
    """Holds the first lookup of `uid` until `release` is set."""

    def __init__(self, uid: str) -> None:
        super().__init__()
        self.uid = uid
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    async def grants_for(self, uid: str) -> Iterable[Grant]:
        grants = await super().grants_for(uid)
        if uid == self.uid and not self.release.is_set():
            self.started.set()
            await self.release.wait()
        return grants


async def test_a_revocation_during_a_decision_is_not_cached_as_an_allow() -> None:
    source = SlowSource("alice")
    source.grant("alice", RID)
    authorizer = AclAuthorizer(source)
    first = asyncio.create_task(authorizer.authorize("alice", RID, Action.READ))
    await source.started.wait()  # alice's grants were read; now the grant goes
    source.revoke("alice", RID)
    assert await authorizer.authorize("bob", RID, Action.READ) == Decision.DENY  # new generation
    source.release.set()
    assert await first == Decision.ALLOW  # decided on the grants it read
    assert await authorizer.authorize("alice", RID, Action.READ) == Decision.DENY


async def test_one_callers_decision_is_never_anothers() -> None:
    source = FakeGrantSource()
    source.grant("alice", RID)
    authorizer = AclAuthorizer(source, max_users=1, max_decisions=1)
    assert await authorizer.authorize("alice", RID, Action.READ) == Decision.ALLOW
    assert await authorizer.authorize("mallory", RID, Action.READ) == Decision.DENY
    assert await authorizer.authorize("alice", RID, Action.READ) == Decision.ALLOW
    assert await authorizer.authorize("alice", RID + ":x", Action.FULL) == Decision.DENY
