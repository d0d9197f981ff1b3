"""The embedded authorizer: decisions from a `GrantSource` (the IAM store), in process.

Allow when the uid holds `dcos:superuser` `full`, or a grant (its own or a group's; the source
merges them) whose action implies the requested one on a rid that covers the requested rid.
Everything else is denied, unknown uids included, and so is a malformed requested rid (see
`app.authz.resource`) for everyone but the superuser. Grants on malformed rids are ignored.

Grants are cached per uid and decisions per (uid, rid, action). Both caches belong to one
`source.generation()`: it is read on every call and any change empties them, so a revoke is
seen by the very next request, in this process or another one sharing the store.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterable
from typing import TypeVar

from app.authz.audit import audit_line, emit
from app.authz.model import SUPERUSER_RID, Action, Decision, Grant, GrantSource
from app.authz.resource import covers_canonical, is_canonical

log = logging.getLogger(__name__)

K = TypeVar("K")
V = TypeVar("V")

DEFAULT_MAX_USERS = 10_000
DEFAULT_MAX_DECISIONS = 100_000

REASON_SUPERUSER = "superuser"
REASON_NO_GRANT = "no matching grant"
REASON_MALFORMED = "malformed resource id"

# The decision and its audit line, rendered once per cache entry.
_Verdict = tuple[Decision, str]


class _Grants:
    """One uid's usable grants (malformed rids dropped), indexed by the actions they imply."""

    __slots__ = ("implying", "superuser")

    def __init__(self, grants: Iterable[Grant]) -> None:
        usable = []
        for grant in grants:
            if is_canonical(grant.rid):
                usable.append(grant)
            else:
                log.warning("ignoring a grant on malformed resource id %r", grant.rid)
        self.superuser = any(g.rid == SUPERUSER_RID and g.action is Action.FULL for g in usable)
        self.implying = {
            action: tuple(g for g in usable if action.granted_by(g.action)) for action in Action
        }

    def decide(self, rid: str, action: Action) -> tuple[Decision, str]:
        """The decision and the reason the audit line gives for it."""
        if self.superuser:
            return Decision.ALLOW, REASON_SUPERUSER
        if not is_canonical(rid):
            return Decision.DENY, REASON_MALFORMED
        for grant in self.implying[action]:
            if covers_canonical(grant.rid, rid):
                return Decision.ALLOW, f"grant {grant.rid} {grant.action.value}"
        return Decision.DENY, REASON_NO_GRANT


class AclAuthorizer:
    """`Authorizer` over a `GrantSource`, with bounded caches (oldest entry out first)."""

    def __init__(
        self,
        source: GrantSource,
        *,
        max_users: int = DEFAULT_MAX_USERS,
        max_decisions: int = DEFAULT_MAX_DECISIONS,
    ) -> None:
        if max_users < 1 or max_decisions < 1:
            raise ValueError("cache sizes must be >= 1")
        self._source = source
        self._max_users = max_users
        self._max_decisions = max_decisions
        self._generation: int | None = None
        self._grants: OrderedDict[str, _Grants] = OrderedDict()
        self._decisions: OrderedDict[tuple[str, str, Action], _Verdict] = OrderedDict()

    async def authorize(self, uid: str, rid: str, action: Action) -> Decision:
        generation = self._source.generation()
        if generation != self._generation:
            self._grants.clear()
            self._decisions.clear()
            self._generation = generation
        key = (uid, rid, action)
        verdict = self._decisions.get(key)
        if verdict is None:
            verdict = await self._decide(uid, rid, action, generation)
        decision, line = verdict
        emit(line)
        return decision

    async def _decide(self, uid: str, rid: str, action: Action, generation: int) -> _Verdict:
        grants = self._grants.get(uid)
        if grants is None:
            # Read after `generation`: if the store changes meanwhile, the next call sees a
            # new generation and drops what we cache here.
            grants = _Grants(await self._source.grants_for(uid))
            if self._generation == generation:
                _put(self._grants, uid, grants, self._max_users)
        decision, reason = grants.decide(rid, action)
        verdict = decision, audit_line(uid, rid, action, decision, reason)
        # Another call may have moved the caches to a newer generation during the await;
        # a verdict from older grants must not land there.
        if self._generation == generation:
            _put(self._decisions, (uid, rid, action), verdict, self._max_decisions)
        return verdict


def _put(cache: OrderedDict[K, V], key: K, value: V, limit: int) -> None:
    # Oldest out first, in O(1): every entry is rebuilt from the store in microseconds, so
    # recency tracking on hits is not worth its cost on the hot path.
    if len(cache) >= limit:
        cache.popitem(last=False)
    cache[key] = value
