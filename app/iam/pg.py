"""The IAM store on PostgreSQL, shared by every gateway replica (`LOGWAY_IAM_DATABASE_URL`).

psycopg 3's synchronous driver on one worker thread per process (the event loop never
waits on the network), one connection, reopened after any connection error: a database that
is down answers 503 ("IAM store unavailable") and service resumes by itself when it is back.

Writes are serialized cluster-wide by a transaction-scoped advisory lock, as SQLite's
`BEGIN IMMEDIATE` serializes them on one host, so the store's check-then-write steps (and
the first superuser, the first signing key) stay race-free without SERIALIZABLE retries.
Every write ends with `pg_notify(CHANNEL, topic)`: PostgreSQL delivers it on commit to every
listening replica, this one included. A listener thread per process (`_Listener`) counts
them: `generation()` (the embedded authorizer's cache key) and `changes(topic)` (the key
ring's) move within milliseconds of a commit anywhere.

When the listener loses its connection, changes cannot be heard: cached decisions are kept
for `stale_grants` seconds (a database that is down takes no writes, so nothing is missed;
only a replica cut off from a live database could miss some, and only for that long), then
`generation()` changes on every call until the listener is back, which forces every
decision through the store. On reconnecting, everything is reloaded once (TOPIC_RESYNC).

CockroachDB: the SQL of the store is kept to what it accepts, except the advisory locks here
(CockroachDB accepts `pg_advisory_xact_lock` but does not lock: run its transactions at its
default SERIALIZABLE isolation instead) and LISTEN/NOTIFY (not supported there: use a
changefeed). README "IAM store" says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors

from app.core.errors import LogwayError, Unavailable
from app.iam.engine import TOPIC_IAM, TOPIC_RESYNC, ChangeListener, Connection, Cursor
from app.iam.errors import Conflict
from app.iam.schema import MIGRATIONS

log = logging.getLogger(__name__)

T = TypeVar("T")

CHANNEL = "logway_iam"
# Advisory lock keys (any two fixed 32-bit numbers that no other application on the database
# uses): one for migrations, one for writes.
MIGRATION_LOCK = zlib.crc32(b"logway iam migrations") & 0x7FFFFFFF
WRITE_LOCK = zlib.crc32(b"logway iam writes") & 0x7FFFFFFF
CONNECT_TIMEOUT = 3  # seconds; libpq wants an integer
STATEMENT_TIMEOUT_MS = 10_000
RECONNECT_INTERVAL = 0.5
LISTEN_POLL = 0.5  # how often the listener looks at its stop flag
UNAVAILABLE = "IAM store unavailable (PostgreSQL)"


class PgDatabase:
    def __init__(self, url: str, *, stale_grants: float = 30.0) -> None:
        self._url = url
        self._stale_grants = stale_grants
        self._executor: ThreadPoolExecutor | None = None
        self._conn: psycopg.Connection[Any] | None = None  # executor thread only
        self._listener: _Listener | None = None

    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="iam-pg")
        try:
            await self._run(self._migrate)
            self._listener = _Listener(self._url, stale_grants=self._stale_grants)
            await asyncio.get_running_loop().run_in_executor(None, self._listener.start)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._listener is not None:
            await asyncio.to_thread(self._listener.stop)
            self._listener = None
        if self._executor is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._disconnect)
            self._executor.shutdown(wait=True)
            self._executor = None

    async def read(self, fn: Callable[[Connection], T]) -> T:
        return await self._run(lambda: self._transaction(fn, topic=None))

    async def transaction(self, fn: Callable[[Connection], T]) -> T:
        """`fn(conn)` in a transaction that is not an IAM change: no write lock, no signal
        (the stream leases of app/gateway/leases.py)."""
        return await self._run(lambda: self._transaction(fn, topic=None))

    async def write(self, fn: Callable[[Connection], T], *, topic: str = TOPIC_IAM) -> T:
        result = await self._run(lambda: self._transaction(fn, topic=topic))
        # This process's own commit counts at once (its notification, which follows, is
        # recognised by the writer's backend pid and only goes to the subscribers).
        if self._listener is not None:
            self._listener.count(topic)
        return result

    def generation(self) -> int:
        if self._listener is None:
            raise RuntimeError("database is not open")
        return self._listener.generation()

    def changes(self, topic: str) -> int:
        if self._listener is None:
            raise RuntimeError("database is not open")
        return self._listener.changes(topic)

    def subscribe(self, listener: ChangeListener) -> Callable[[], None]:
        """Call `listener(topic)` on this event loop for every change heard, from any
        replica (TOPIC_RESYNC after the signal was lost). Returns the unsubscribe function."""
        if self._listener is None:
            raise RuntimeError("database is not open")
        return self._listener.subscribe(asyncio.get_running_loop(), listener)

    @property
    def listening(self) -> bool:
        return self._listener is not None and self._listener.connected

    # on the executor thread

    async def _run(self, fn: Callable[[], T]) -> T:
        if self._executor is None:
            raise Unavailable("IAM store is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = connect(self._url)
            if self._listener is not None:
                self._listener.own_pid = self._conn.info.backend_pid
        return self._conn

    def _disconnect(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _transaction(self, fn: Callable[[Connection], T], *, topic: str | None) -> T:
        try:
            conn = self._connection()
            with conn.transaction():
                if topic is not None:
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
                result = fn(_Conn(conn))
                if topic is not None:
                    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, topic))
            return result
        except LogwayError:
            raise
        except pg_errors.IntegrityError as exc:
            log.warning("IAM store constraint failed: %s", exc.diag.message_primary)
            raise Conflict("Conflicting change") from None
        except psycopg.Error as exc:
            log.error("IAM store error: %s", _describe(exc))
            # A broken or lost connection is reopened by the next call.
            if isinstance(exc, psycopg.OperationalError) or (
                self._conn is not None and (self._conn.broken or self._conn.closed)
            ):
                self._disconnect()
            raise Unavailable(UNAVAILABLE) from None

    def _migrate(self) -> None:
        try:
            with connect(self._url) as conn, conn.transaction():
                # Replicas starting together: one migrates, the others wait here, then see it.
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
                conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
                row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
                current = int(row[0] or 0) if row else 0
                if current > len(MIGRATIONS):
                    raise RuntimeError(
                        f"IAM database schema version {current} is newer than this Logway "
                        f"(knows up to {len(MIGRATIONS)})"
                    )
                for version, statements in enumerate(MIGRATIONS[current:], start=current + 1):
                    for statement in statements:
                        conn.execute(statement.encode())
                    conn.execute("DELETE FROM schema_version")
                    conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (version,))
                    log.info("IAM database migrated to schema version %d", version)
        except psycopg.OperationalError as exc:
            raise Unavailable(f"{UNAVAILABLE}: {_describe(exc)}") from None


def connect(url: str, *, autocommit: bool = True) -> psycopg.Connection[Any]:
    return psycopg.connect(
        url,
        autocommit=autocommit,
        connect_timeout=CONNECT_TIMEOUT,
        options=f"-c statement_timeout={STATEMENT_TIMEOUT_MS}",
        application_name="logway-iam",
    )


class _Conn:
    """The store's `Connection` over psycopg: `?` placeholders become `%s`."""

    __slots__ = ("_conn",)
    _translated: dict[str, str] = {}

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor:
        query = self._translated.get(sql)
        if query is None:
            query = self._translated[sql] = sql.replace("%", "%%").replace("?", "%s")
        cursor: Cursor = self._conn.execute(query.encode(), tuple(parameters))
        return cursor


class _Listener:
    """LISTEN on a connection of its own, on a thread of its own; counts what it hears."""

    def __init__(self, url: str, *, stale_grants: float) -> None:
        self._url = url
        self._stale_grants = stale_grants
        self._lock = threading.Lock()
        self._heard: Counter[str] = Counter()
        self._generation = 0
        self._down_since: float | None = time.monotonic()
        self._stop = threading.Event()
        self._connected = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="iam-pg-listen", daemon=True)
        self._subscribers: list[tuple[asyncio.AbstractEventLoop, ChangeListener]] = []
        # The backend of this process's writer: its notifications were counted on commit.
        self.own_pid: int | None = None

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def start(self) -> None:
        self._thread.start()
        if not self._connected.wait(CONNECT_TIMEOUT + 2):
            log.warning("IAM change signal not connected yet: cached grants are not trusted")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(LISTEN_POLL * 4 + CONNECT_TIMEOUT)

    def generation(self) -> int:
        with self._lock:
            down = self._down_since
            if down is not None and time.monotonic() - down > self._stale_grants:
                self._generation += 1  # no signal for too long: trust no cache
            return self._generation

    def changes(self, topic: str) -> int:
        with self._lock:
            return self._heard[topic] + self._heard[TOPIC_RESYNC]

    def subscribe(
        self, loop: asyncio.AbstractEventLoop, listener: ChangeListener
    ) -> Callable[[], None]:
        entry = (loop, listener)
        with self._lock:
            self._subscribers.append(entry)

        def unsubscribe() -> None:
            with self._lock:
                if entry in self._subscribers:
                    self._subscribers.remove(entry)

        return unsubscribe

    def count(self, topic: str) -> None:
        with self._lock:
            self._heard[topic] += 1
            self._generation += 1

    def _heard_one(self, topic: str, *, own: bool = False) -> None:
        if not own:
            self.count(topic)
        with self._lock:
            subscribers = list(self._subscribers)
        for loop, listener in subscribers:
            with contextlib.suppress(RuntimeError):  # that subscriber's loop has closed
                loop.call_soon_threadsafe(listener, topic)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                with connect(self._url) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    with self._lock:
                        was_down = self._down_since is not None
                        self._down_since = None
                    self._connected.set()
                    if was_down:
                        self._heard_one(TOPIC_RESYNC)  # changes may have gone unheard
                    while not self._stop.is_set():
                        for notify in conn.notifies(timeout=LISTEN_POLL):
                            self._heard_one(notify.payload, own=notify.pid == self.own_pid)
            except psycopg.Error as exc:
                with self._lock:
                    if self._down_since is None:
                        self._down_since = time.monotonic()
                        log.warning("IAM change signal lost: %s", _describe(exc))
                self._connected.clear()
                self._stop.wait(RECONNECT_INTERVAL)


def _describe(exc: BaseException) -> str:
    # psycopg's messages name the host and port, never the password.
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
