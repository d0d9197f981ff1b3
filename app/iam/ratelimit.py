"""Failed-login limits: a token bucket per key (uid, client address).

In memory and per process: N gateway workers each allow the configured number, so the
effective limit is N times higher. Good enough against online guessing at human scale; a
shared limit would need the store (and a write per failure).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

# Bounds memory under a spray of distinct uids/addresses; the oldest buckets go first.
MAX_TRACKED_KEYS = 10_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class FailureLimiter:
    """Allows `failures` failures in a burst, refilled at `failures` per `window` seconds."""

    def __init__(
        self,
        failures: int,
        window: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_TRACKED_KEYS,
    ) -> None:
        if failures < 1 or window <= 0:
            raise ValueError("need failures >= 1 and window > 0")
        self._capacity = float(failures)
        self._rate = failures / window
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def retry_after(self, key: str) -> float:
        """Seconds until `key` may try again; 0 when it may now."""
        bucket = self._refilled(key)
        if bucket is None or bucket.tokens >= 1:
            return 0.0
        return (1 - bucket.tokens) / self._rate

    def failed(self, key: str) -> None:
        bucket = self._refilled(key)
        if bucket is None:
            bucket = _Bucket(self._capacity, self._clock())
            self._buckets[key] = bucket
            while len(self._buckets) > self._max_keys:
                self._buckets.popitem(last=False)
        bucket.tokens = max(bucket.tokens - 1, 0.0)
        self._buckets.move_to_end(key)

    def refund(self, key: str) -> None:
        """Take back one failure (an attempt counted up front turned out to succeed)."""
        bucket = self._refilled(key)
        if bucket is not None:
            bucket.tokens = min(self._capacity, bucket.tokens + 1)

    def reset(self, key: str) -> None:
        self._buckets.pop(key, None)

    def _refilled(self, key: str) -> _Bucket | None:
        bucket = self._buckets.get(key)
        if bucket is None:
            return None
        now = self._clock()
        bucket.tokens = min(self._capacity, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        if bucket.tokens >= self._capacity:  # as good as new: forget it
            del self._buckets[key]
            return None
        return bucket


def whole_seconds(delay: float) -> int:
    """`Retry-After` wants an integer; round up so a client that waits it out gets in."""
    return max(1, math.ceil(delay))
