"""The IAM's SQLite file: one connection on one thread per process, WAL, migrations.

Several gateway workers (processes) share the file. WAL lets readers run beside the one
writer; writes take the write lock up front (`BEGIN IMMEDIATE`) so that two processes never
deadlock upgrading a read lock, and wait `busy_timeout` for it before answering 503.

`generation()` is the cross-process change check of `GrantSource`: a counter of this process's
commits plus `PRAGMA data_version` from a second connection, which changes whenever any other
connection (this process's writer included) commits. Both only grow, so their sum changes on
every commit anywhere. Measured at about 4 µs a call. It never raises: if SQLite cannot
answer, it reports a change (a spurious cache refill is safe, a stale cache is not).
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from app.core.errors import LogwayError, Unavailable
from app.iam.engine import TOPIC_IAM, ChangeListener, Connection
from app.iam.errors import Conflict
from app.iam.schema import MIGRATIONS

log = logging.getLogger(__name__)

T = TypeVar("T")

WATCH_BUSY_TIMEOUT = 0.05
CHANGE_POLL = 0.25


class Database:
    def __init__(self, path: Path, *, busy_timeout: float = 5.0) -> None:
        self.path = path
        self._busy_timeout = busy_timeout
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None  # used on the executor thread only
        self._watch: sqlite3.Connection | None = None
        self._watch_lock = threading.Lock()
        self._local_commits = 0
        self._unknown_changes = 0
        self._data_version = 0

    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="iam-db")
        try:
            await self._run(self._open_on_thread)
            # Used on the event loop: a short busy timeout (reads in WAL mode rarely wait).
            self._watch = self._connect(check_same_thread=False, timeout=WATCH_BUSY_TIMEOUT)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        if self._watch is not None:
            with self._watch_lock:
                self._watch.close()
            self._watch = None
        if self._executor is not None:
            if self._conn is not None:
                await self._run(self._close_on_thread)
            self._executor.shutdown(wait=True)
            self._executor = None

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """`fn(conn)` on the database thread, inside one read transaction (one snapshot)."""
        return await self._run(lambda: self._transaction("BEGIN", fn))

    async def write(self, fn: Callable[[Connection], T], *, topic: str = TOPIC_IAM) -> T:
        """`fn(conn)` inside one write transaction; a `LogwayError` from `fn` rolls it back.
        (`topic` is for the engines with a change signal: here every commit is one change.)"""
        return await self._run(lambda: self._transaction("BEGIN IMMEDIATE", fn, write=True))

    def generation(self) -> int:
        if self._watch is None:
            raise RuntimeError("database is not open")
        try:
            with self._watch_lock:
                row = self._watch.execute("PRAGMA data_version").fetchone()
        except sqlite3.Error as exc:
            # Called on the event loop for every authorization: never raise, never wait long.
            # A new value only costs the caller a cache refill; an old one could be stale.
            log.warning("IAM store data_version unavailable (%s): reporting a change", exc)
            self._unknown_changes += 1
            return self._local_commits + self._unknown_changes + self._data_version
        self._data_version = int(row[0])
        return self._local_commits + self._unknown_changes + self._data_version

    def changes(self, topic: str) -> int:
        return self.generation()

    def subscribe(self, listener: ChangeListener) -> Callable[[], None]:
        """SQLite has no change signal across processes: a task polls `generation()` every
        `CHANGE_POLL` seconds and calls `listener(TOPIC_IAM)` when it moved."""

        async def poll() -> None:
            seen = self.generation()
            while True:
                await asyncio.sleep(CHANGE_POLL)
                now = self.generation()
                if now != seen:
                    seen = now
                    listener(TOPIC_IAM)

        task = asyncio.get_running_loop().create_task(poll())

        def unsubscribe() -> None:
            task.cancel()

        return unsubscribe

    async def _run(self, fn: Callable[[], T]) -> T:
        if self._executor is None:
            raise Unavailable("IAM store is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    def _transaction(self, begin: str, fn: Callable[[Connection], T], *, write: bool = False) -> T:
        conn = self._conn
        if conn is None:
            raise Unavailable("IAM store is closed")
        try:
            conn.execute(begin)
            try:
                result = fn(conn)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:  # SQLite may have rolled back already (e.g. disk full)
                    conn.execute("ROLLBACK")
                raise
        except LogwayError:
            raise
        except sqlite3.IntegrityError as exc:
            log.warning("IAM store constraint failed: %s", exc)
            raise Conflict("Conflicting change") from None
        except sqlite3.Error as exc:
            log.error("IAM store error: %s", exc)
            raise Unavailable("IAM store unavailable") from None
        if write:
            self._local_commits += 1
        return result

    def _connect(
        self, *, check_same_thread: bool = True, timeout: float | None = None
    ) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            timeout=self._busy_timeout if timeout is None else timeout,  # SQLite busy timeout
            isolation_level=None,  # we issue BEGIN/COMMIT ourselves
            check_same_thread=check_same_thread,
        )
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def _open_on_thread(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Password hashes live here: owner-only, and SQLite gives -wal/-shm the same mode.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        conn = self._connect()
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise RuntimeError(f"{self.path}: cannot use WAL mode (got {mode!r})")
            # FULL: a login or grant acknowledged to a client survives a power cut.
            conn.execute("PRAGMA synchronous = FULL")
            _migrate(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def _close_on_thread(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _migrate(conn: sqlite3.Connection) -> None:
    # Under the write lock, so that workers starting together migrate once.
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
        current = int(row[0] or 0)
        if current > len(MIGRATIONS):
            raise RuntimeError(
                f"IAM database schema version {current} is newer than this Logway "
                f"(knows up to {len(MIGRATIONS)})"
            )
        for version, statements in enumerate(MIGRATIONS[current:], start=current + 1):
            for statement in statements:
                conn.execute(statement)
            conn.execute("DELETE FROM schema_version")
            conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
            log.info("IAM database migrated to schema version %d", version)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
