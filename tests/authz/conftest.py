"""Fakes for authz: an in-memory grant source, and the fake IAM's policy query on loopback."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pytest
from starlette.types import Receive, Scope, Send

from app.authz.model import Action, Grant
from tests.support.fake_iam import FakeIam
from tests.support.servers import serve_on_thread


class FakeGrantSource:
    """Users, groups and memberships in dicts; every change bumps the generation."""

    def __init__(self) -> None:
        self.user_grants: dict[str, set[Grant]] = {}
        self.group_grants: dict[str, set[Grant]] = {}
        self.members: dict[str, set[str]] = {}  # group -> uids
        self.lookups: list[str] = []
        self._generation = 0

    def grant(self, uid: str, rid: str, action: Action = Action.READ) -> None:
        self.user_grants.setdefault(uid, set()).add(Grant(rid, action))
        self._generation += 1

    def revoke(self, uid: str, rid: str, action: Action = Action.READ) -> None:
        self.user_grants.get(uid, set()).discard(Grant(rid, action))
        self._generation += 1

    def grant_group(self, group: str, rid: str, action: Action = Action.READ) -> None:
        self.group_grants.setdefault(group, set()).add(Grant(rid, action))
        self._generation += 1

    def add_member(self, group: str, uid: str) -> None:
        self.members.setdefault(group, set()).add(uid)
        self._generation += 1

    def remove_member(self, group: str, uid: str) -> None:
        self.members.get(group, set()).discard(uid)
        self._generation += 1

    async def grants_for(self, uid: str) -> Iterable[Grant]:
        self.lookups.append(uid)
        grants = set(self.user_grants.get(uid, ()))
        for group, uids in self.members.items():
            if uid in uids:
                grants |= self.group_grants.get(group, set())
        return sorted(grants, key=lambda g: (g.rid, g.action))

    def generation(self) -> int:
        return self._generation


@pytest.fixture
def source() -> FakeGrantSource:
    return FakeGrantSource()


class Slot:
    """The ASGI app a module-scoped server serves: this test's fake IAM."""

    def __init__(self) -> None:
        self.current = FakeIam()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.current(scope, receive, send)


@pytest.fixture(scope="module")
def iam_server() -> Iterator[tuple[str, Slot]]:
    """One loopback server for the module (the policy query's stalls need a real socket)."""
    slot = Slot()
    with serve_on_thread(slot) as url:
        yield url, slot


@pytest.fixture
def iam(iam_server: tuple[str, Slot]) -> FakeIam:
    url, slot = iam_server
    slot.current = FakeIam(url=url)
    return slot.current
