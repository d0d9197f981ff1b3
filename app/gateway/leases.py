"""Per-identity stream caps counted across every gateway replica on the PostgreSQL store.

Each open stream holds a lease row (`stream_leases`: kind, uid, replica, expires_at) that its
replica renews three times per `ttl` while it lives. Taking a slot is one transaction under
an advisory lock on (kind, uid): expired leases of that identity go, the live ones are
counted, and a new one is inserted only below the cap — exact however many replicas the
identity spreads over. A replica killed with its streams open stops renewing: its slots free
themselves within `ttl` (`stream_lease_ttl`, 15 s; the issue allows 30). Closing a stream
deletes its lease. Times are the database's clock (`now()`), so replicas' clocks do not matter.

The store down: the cap falls back to this replica's own count (the same cap per replica,
so at most replicas times cap cluster-wide while it lasts) rather than refusing every follow;
the log says so. Leases taken then are not in the database: the shared count is low by
those streams until they end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
import zlib
from collections.abc import Coroutine

from app.core.errors import Unavailable
from app.gateway.limits import Release, StreamCount
from app.iam.engine import Connection
from app.iam.pg import PgDatabase

log = logging.getLogger(__name__)

DEFAULT_LEASE_TTL = 15.0
RENEWALS_PER_TTL = 3  # a lease survives two missed renewals
# The database's clock, in seconds since the epoch.
_EXPIRE = (
    "DELETE FROM stream_leases"
    " WHERE kind = ? AND uid = ? AND expires_at < EXTRACT(EPOCH FROM now())"
)
_INSERT = (
    "INSERT INTO stream_leases (id, kind, uid, replica, expires_at)"
    " VALUES (?, ?, ?, ?, EXTRACT(EPOCH FROM now()) + ?)"
)
_RENEW = (
    "UPDATE stream_leases SET expires_at = EXTRACT(EPOCH FROM now()) + ?"
    " WHERE replica = ? AND kind = ?"
)


class LeasedStreamCount:
    def __init__(
        self,
        db: PgDatabase,
        kind: str,
        *,
        ttl: float = DEFAULT_LEASE_TTL,
        replica: str | None = None,
    ) -> None:
        self._db = db
        self._kind = kind
        self._ttl = ttl
        self.replica = replica or uuid.uuid4().hex
        self._local = StreamCount()  # what this replica holds; the fallback count
        self._unsaved: set[str] = set()  # released here, not yet deleted there
        self._tasks: set[asyncio.Task[None]] = set()
        self._renewer: asyncio.Task[None] | None = None

    def held(self, uid: str) -> int:
        return self._local.held(uid)

    async def acquire(self, uid: str, cap: int) -> Release | None:
        lease = uuid.uuid4().hex
        try:
            taken = await self._db.transaction(lambda conn: self._take(conn, uid, cap, lease))
        except Unavailable as exc:
            log.warning("stream cap counted on this replica only: %s", exc)
            return await self._local.acquire(uid, cap)
        if not taken:
            return None
        release_local = self._local.hold(uid)
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            release_local()
            self._unsaved.add(lease)
            self._spawn(self._delete({lease}))

        return release

    async def start(self) -> None:
        self._renewer = asyncio.get_running_loop().create_task(self._renew_forever())

    async def close(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
        for task in list(self._tasks):
            with contextlib.suppress(Exception):
                await task
        # A clean stop frees its slots at once (a crash frees them by expiry).
        with contextlib.suppress(Unavailable):
            await self._db.transaction(
                lambda conn: conn.execute(
                    "DELETE FROM stream_leases WHERE replica = ? AND kind = ?",
                    (self.replica, self._kind),
                )
            )

    def _take(self, conn: Connection, uid: str, cap: int, lease: str) -> bool:
        key = zlib.crc32(f"logway lease {self._kind} {uid}".encode()) & 0x7FFFFFFF
        conn.execute("SELECT pg_advisory_xact_lock(?)", (key,))
        conn.execute(_EXPIRE, (self._kind, uid))
        found = conn.execute(
            "SELECT count(*) FROM stream_leases WHERE kind = ? AND uid = ?", (self._kind, uid)
        ).fetchone()
        if int(found[0]) >= cap:
            return False
        conn.execute(_INSERT, (lease, self._kind, uid, self.replica, self._ttl))
        return True

    async def _delete(self, leases: set[str]) -> None:
        ids = sorted(leases)

        def delete(conn: Connection) -> None:
            for lease in ids:
                conn.execute("DELETE FROM stream_leases WHERE id = ?", (lease,))

        try:
            await self._db.transaction(delete)
        except Unavailable:
            return  # tried again at the next renewal; expiry is the backstop
        self._unsaved.difference_update(ids)

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self._ttl / RENEWALS_PER_TTL)
            if self._unsaved:
                await self._delete(set(self._unsaved))
            try:
                await self._db.transaction(
                    lambda conn: conn.execute(_RENEW, (self._ttl, self.replica, self._kind))
                )
            except Unavailable as exc:
                log.warning("stream leases not renewed: %s", exc)

    def _spawn(self, work: Coroutine[None, None, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
