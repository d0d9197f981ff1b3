"""The DC/OS permission model's values, shared by the authorizer and the IAM store.

A grant is (principal, resource id, action). Principals are users (people and service
accounts alike, by uid) or groups. `full` implies every other action. Deny by default.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

SUPERUSER_RID = "dcos:superuser"


class Action(enum.StrEnum):
    CREATE = "create"
    READ = "read"
    UPDATE = "update"
    DELETE = "delete"
    FULL = "full"

    def granted_by(self, held: Action) -> bool:
        return held is Action.FULL or held is self


class PrincipalKind(enum.StrEnum):
    USER = "user"
    GROUP = "group"


@dataclass(frozen=True, slots=True)
class Grant:
    """`action` on `rid` (and, hierarchically, its descendants) held by a principal."""

    rid: str
    action: Action


class Decision(enum.Enum):
    ALLOW = "allow"
    DENY = "deny"

    @property
    def allowed(self) -> bool:
        return self is Decision.ALLOW


class GrantSource(Protocol):
    """Where an embedded authorizer reads grants: the IAM store implements this."""

    async def grants_for(self, uid: str) -> Iterable[Grant]:
        """Every grant of `uid`, directly and through its groups (unknown uid: none)."""
        ...

    def generation(self) -> int:
        """Changes whenever any user, group, membership or ACL changes, in this process or
        in another one sharing the store (a cache key). Must be cheap: it is called on
        every authorization decision (e.g. an in-memory counter plus SQLite's
        `PRAGMA data_version`)."""
        ...


class Authorizer(Protocol):
    """Default deny. Raises `app.core.errors.Unavailable` when it cannot decide (fail closed)."""

    async def authorize(self, uid: str, rid: str, action: Action) -> Decision: ...
