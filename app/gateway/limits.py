"""Streams one identity holds open, for the per-identity caps (`max_follows_per_identity`,
`merge_max_streams_per_identity`): one slow or greedy caller cannot pin every node reader's
followers. `StreamSlots` is the seam: `StreamCount` here counts in this process (SQLite, one
host, like Loki's per-tenant tail limit); `app.gateway.leases.LeasedStreamCount` counts across
every replica on the PostgreSQL store."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Protocol

Release = Callable[[], None]


class StreamSlots(Protocol):
    def held(self, uid: str) -> int:
        """Streams `uid` holds through this process."""
        ...

    async def acquire(self, uid: str, cap: int) -> Release | None:
        """One more stream of `uid` if it holds fewer than `cap` (wherever the slots are
        counted), with the function that gives it back (once); None when at the cap."""
        ...


class StreamCount:
    def __init__(self) -> None:
        self._held: Counter[str] = Counter()

    def held(self, uid: str) -> int:
        return self._held[uid]

    async def acquire(self, uid: str, cap: int) -> Release | None:
        if self._held[uid] >= cap:
            return None
        return self.hold(uid)

    def hold(self, uid: str) -> Release:
        """Count one more stream of `uid`; the function returned releases it (once: later
        calls do nothing)."""
        self._held[uid] += 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self._held[uid] -= 1
            if self._held[uid] <= 0:
                del self._held[uid]

        return release
