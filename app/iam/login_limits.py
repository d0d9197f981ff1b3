"""Failed-login limits per uid and per client address: `LoginLimits` is what `Login` asks.

`LocalLoginLimits`: token buckets in this process (ratelimit.py), as on SQLite: N processes
allow N times the limit. `SharedLoginLimits`: the same buckets as rows in the PostgreSQL store,
so the limit holds across every replica: one transaction per attempt (the rows of the uid and
the address locked in that order, refilled by the database's clock, both counted or neither),
one more on success.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from app.iam.engine import Connection
from app.iam.pg import PgDatabase
from app.iam.ratelimit import FailureLimiter

CLEANUP_INTERVAL = 60.0


class LoginLimits(Protocol):
    async def admit(self, uid: str, srcip: str) -> float:
        """0: the attempt may go on and counts as a failure until `succeeded`; else the
        seconds to wait before trying again (nothing counted)."""
        ...

    async def refund(self, uid: str, srcip: str) -> None:
        """The attempt did not count after all (the store could not answer)."""
        ...

    async def succeeded(self, uid: str, srcip: str) -> None:
        """The uid's failures are forgotten; the address gets its attempt back."""
        ...


class LocalLoginLimits:
    def __init__(
        self, per_uid: int, per_address: int, window: float, *, clock: Callable[[], float]
    ) -> None:
        self._by_uid = FailureLimiter(per_uid, window, clock=clock)
        self._by_address = FailureLimiter(per_address, window, clock=clock)

    async def admit(self, uid: str, srcip: str) -> float:
        wait = max(self._by_uid.retry_after(uid), self._by_address.retry_after(srcip))
        if wait <= 0:
            self._by_uid.failed(uid)
            self._by_address.failed(srcip)
        return wait

    async def refund(self, uid: str, srcip: str) -> None:
        self._by_uid.refund(uid)
        self._by_address.refund(srcip)

    async def succeeded(self, uid: str, srcip: str) -> None:
        self._by_uid.reset(uid)
        self._by_address.refund(srcip)


_NOW = "SELECT EXTRACT(EPOCH FROM now())"
_ENSURE = "INSERT INTO login_buckets VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING"
_LOCK = "SELECT tokens, updated FROM login_buckets WHERE scope = ? AND key = ? FOR UPDATE"
_SET = "UPDATE login_buckets SET tokens = ?, updated = ? WHERE scope = ? AND key = ?"
_REFUND = "UPDATE login_buckets SET tokens = LEAST(tokens + 1, ?) WHERE scope = ? AND key = ?"


class SharedLoginLimits:
    def __init__(self, db: PgDatabase, per_uid: int, per_address: int, window: float) -> None:
        self._db = db
        self._window = window
        self._scopes = (("uid", float(per_uid)), ("address", float(per_address)))
        self._cleaned = time.monotonic()

    async def admit(self, uid: str, srcip: str) -> float:
        wait = await self._db.transaction(lambda conn: self._admit(conn, (uid, srcip)))
        if time.monotonic() - self._cleaned > CLEANUP_INTERVAL:
            self._cleaned = time.monotonic()
            # Alone in its transaction: it must not hold rows an admission waits for.
            await self._db.transaction(self._cleanup)
        return wait

    async def refund(self, uid: str, srcip: str) -> None:
        def refund(conn: Connection) -> None:
            for (scope, cap), key in zip(self._scopes, (uid, srcip), strict=True):
                conn.execute(_REFUND, (cap, scope, key))

        await self._db.transaction(refund)

    async def succeeded(self, uid: str, srcip: str) -> None:
        def forget(conn: Connection) -> None:
            conn.execute("DELETE FROM login_buckets WHERE scope = 'uid' AND key = ?", (uid,))
            conn.execute(_REFUND, (self._scopes[1][1], "address", srcip))

        await self._db.transaction(forget)

    def _admit(self, conn: Connection, keys: tuple[str, str]) -> float:
        now = float(conn.execute(_NOW).fetchone()[0])
        refilled: list[float] = []
        wait = 0.0
        for (scope, cap), key in zip(self._scopes, keys, strict=True):
            rate = cap / self._window
            conn.execute(_ENSURE, (scope, key, cap, now))
            tokens, updated = conn.execute(_LOCK, (scope, key)).fetchone()
            level = min(cap, float(tokens) + (now - float(updated)) * rate)
            refilled.append(level)
            if level < 1:
                wait = max(wait, (1 - level) / rate)
        for (scope, _), key, level in zip(self._scopes, keys, refilled, strict=True):
            conn.execute(_SET, (level if wait > 0 else level - 1, now, scope, key))
        return wait

    def _cleanup(self, conn: Connection) -> None:
        # A bucket untouched for a whole window is full again: as good as absent.
        now = float(conn.execute(_NOW).fetchone()[0])
        conn.execute("DELETE FROM login_buckets WHERE updated < ?", (now - self._window,))
