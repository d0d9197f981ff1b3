"""Authentication also finds the uid in the IAM: a validly signed token for a uid that does not
(or no longer) exist is refused (issue 12 §5), on routes open to any authenticated caller too.

The answer per uid is cached and the whole cache dropped when the directory's change signal
(the embedded store's `generation()`) moves, so a deletion is seen by the very next request.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Protocol

from starlette.requests import Request

from app.authn.authenticator import Identity, JwtAuthenticator
from app.authn.errors import Reason, TokenRejected
from app.authn.verify import Claims

DEFAULT_MAX_UIDS = 10_000


class UidDirectory(Protocol):
    def generation(self) -> int: ...

    async def user_exists(self, uid: str) -> bool: ...


class KnownUids:
    """An authenticator whose identities all exist in `directory`."""

    def __init__(
        self, inner: JwtAuthenticator, directory: UidDirectory, *, max_uids: int = DEFAULT_MAX_UIDS
    ) -> None:
        self._inner = inner
        self._directory = directory
        self._max = max_uids
        self._known: OrderedDict[str, bool] = OrderedDict()
        self._generation: int | None = None

    async def authenticate(self, request: Request) -> Identity | None:
        identity = await self._inner.authenticate(request)
        if identity is not None and not await self.exists(identity.uid):
            raise TokenRejected(Reason.UNKNOWN_UID)
        return identity

    async def verify(self, token: str) -> Claims:
        """The signature and claims only (no directory lookup), as `JwtAuthenticator.verify`."""
        return await self._inner.verify(token)

    async def exists(self, uid: str) -> bool:
        generation = self._directory.generation()
        if generation != self._generation:
            self._known.clear()
            self._generation = generation
        found = self._known.get(uid)
        if found is None:
            found = await self._directory.user_exists(uid)
            if self._generation == generation:  # no change while we looked
                self._known[uid] = found
                if len(self._known) > self._max:
                    self._known.popitem(last=False)
        return found
