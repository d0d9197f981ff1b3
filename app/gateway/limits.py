"""Streams one identity holds open through this gateway process, for the per-identity caps
(`max_follows_per_identity`, `merge_max_streams_per_identity`): one slow or greedy caller
cannot pin every node reader's followers. Counts are per process, like Loki's per-tenant tail
limit; a cluster-wide cap would need shared state the gateway does not keep."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable


class StreamCount:
    def __init__(self) -> None:
        self._held: Counter[str] = Counter()

    def held(self, uid: str) -> int:
        return self._held[uid]

    def hold(self, uid: str) -> Callable[[], None]:
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
