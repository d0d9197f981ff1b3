"""Values the IAM store hands out: users, groups, ACLs, ACEs and held permissions."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.authz.model import Action, PrincipalKind


@dataclass(frozen=True, slots=True)
class User:
    """A person (password or none) or a service account (`public_key`, RSA PEM)."""

    uid: str
    description: str
    password_hash: str | None = field(default=None, repr=False)
    public_key: str | None = field(default=None, repr=False)

    @property
    def is_service(self) -> bool:
        return self.public_key is not None


@dataclass(frozen=True, slots=True)
class Group:
    gid: str
    description: str


@dataclass(frozen=True, slots=True)
class Acl:
    rid: str
    description: str


@dataclass(frozen=True, slots=True)
class Ace:
    """One access control entry: `principal` (a uid or gid, by `kind`) may `action` on `rid`."""

    rid: str
    kind: PrincipalKind
    principal: str
    action: Action


@dataclass(frozen=True, slots=True)
class HeldPermission:
    """A permission a user holds: directly (`gid` None) or through group `gid`."""

    rid: str
    acl_description: str
    action: Action
    gid: str | None = None
