"""The SQLite store directly: CRUD, constraints, grants, migrations, and `generation()` across
connections and processes sharing one file."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from app.authz.model import Action, Grant, PrincipalKind
from app.core.errors import NotFound
from app.iam import Conflict, IamStore
from app.iam.pg import PgDatabase
from app.iam.records import Ace, Acl, Group, User
from app.iam.schema import MIGRATIONS
from tests.iam.conftest import database_for

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def store(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[IamStore]:
    """On each backend (tests/iam/conftest.py `backend`)."""
    url = database_for(backend, request)
    s = IamStore(tmp_path / "iam.db" if url is None else PgDatabase(url))
    await s.open()
    yield s
    await s.close()


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[IamStore]:
    """For what only the SQLite engine has: its file, WAL, `data_version`."""
    s = IamStore(tmp_path / "iam.db")
    await s.open()
    yield s
    await s.close()


async def test_file_is_created_private_in_wal_mode_with_a_schema_version(
    tmp_path: Path, sqlite_store: IamStore
) -> None:
    path = tmp_path / "iam.db"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(len(MIGRATIONS),)]
    finally:
        conn.close()


async def test_reopening_does_not_migrate_again(tmp_path: Path, sqlite_store: IamStore) -> None:
    await sqlite_store.create_user(User("u1", "d"))
    again = IamStore(tmp_path / "iam.db")
    await again.open()
    try:
        assert (await again.get_user("u1")).description == "d"
    finally:
        await again.close()


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "iam.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version VALUES (99)")
    conn.commit()
    conn.close()
    store = IamStore(path)
    with pytest.raises(RuntimeError, match="newer"):
        await store.open()


async def test_users(store: IamStore) -> None:
    await store.create_user(User("alice", "Alice", password_hash="h"))
    await store.create_user(User("svc", "Service", public_key="PEM"))
    with pytest.raises(Conflict):
        await store.create_user(User("alice", "again"))
    assert (await store.get_user("alice")).password_hash == "h"
    assert [u.uid for u in await store.list_users(services=False)] == ["alice"]
    assert [u.uid for u in await store.list_users(services=True)] == ["svc"]
    await store.update_user("alice", description="A.")
    assert await store.get_user("alice") == User("alice", "A.", password_hash="h")
    with pytest.raises(Conflict):
        await store.update_user("svc", password_hash="h")
    with pytest.raises(Conflict):
        await store.update_user("alice", public_key="PEM")
    await store.delete_user("alice")
    assert await store.find_user("alice") is None
    with pytest.raises(NotFound):
        await store.delete_user("alice")
    assert "h" not in repr(User("x", "y", password_hash="h"))


async def test_grants_for_merges_own_and_group_grants(store: IamStore) -> None:
    await store.create_user(User("bob", ""))
    await store.create_user(User("eve", ""))
    await store.create_group(Group("ops", ""))
    await store.add_member("ops", "bob")
    for rid in ("dcos:a", "dcos:b", "dcos:c"):
        await store.acls.create(Acl(rid, ""))
    await store.acls.grant(Ace("dcos:a", PrincipalKind.USER, "bob", Action.READ))
    await store.acls.grant(Ace("dcos:b", PrincipalKind.GROUP, "ops", Action.FULL))
    await store.acls.grant(Ace("dcos:a", PrincipalKind.GROUP, "ops", Action.READ))  # overlap
    await store.acls.grant(Ace("dcos:c", PrincipalKind.USER, "eve", Action.FULL))

    assert sorted(await store.grants_for("bob"), key=str) == sorted(
        [Grant("dcos:a", Action.READ), Grant("dcos:b", Action.FULL)], key=str
    )
    assert list(await store.grants_for("nobody")) == []

    await store.remove_member("ops", "bob")
    assert list(await store.grants_for("bob")) == [Grant("dcos:a", Action.READ)]
    await store.delete_group("ops")
    assert [e.principal for e in await store.acls.entries("dcos:b")] == []
    await store.acls.delete("dcos:c")
    assert list(await store.grants_for("eve")) == []


async def test_references_must_exist(store: IamStore) -> None:
    await store.create_user(User("bob", ""))
    await store.acls.create(Acl("dcos:a", ""))
    with pytest.raises(NotFound, match="Group 'nope'"):
        await store.add_member("nope", "bob")
    with pytest.raises(NotFound, match="ACL for resource 'dcos:x'"):
        await store.acls.grant(Ace("dcos:x", PrincipalKind.USER, "bob", Action.READ))
    with pytest.raises(NotFound, match="User 'ghost'"):
        await store.acls.grant(Ace("dcos:a", PrincipalKind.USER, "ghost", Action.READ))
    with pytest.raises(NotFound):
        await store.acls.revoke(Ace("dcos:a", PrincipalKind.USER, "bob", Action.READ))


async def test_generation_changes_on_every_write(store: IamStore) -> None:
    seen = {store.generation()}
    await store.create_user(User("bob", ""))
    seen.add(store.generation())
    await store.create_group(Group("g", ""))
    seen.add(store.generation())
    await store.add_member("g", "bob")
    seen.add(store.generation())
    assert len(seen) == 4
    # Reads and refused writes change nothing.
    before = store.generation()
    await store.grants_for("bob")
    with pytest.raises(Conflict):
        await store.create_group(Group("g", ""))
    assert store.generation() == before


async def test_generation_sees_another_connection(tmp_path: Path, sqlite_store: IamStore) -> None:
    other = IamStore(tmp_path / "iam.db")
    await other.open()
    try:
        before = sqlite_store.generation()
        await other.create_user(User("bob", ""))
        assert sqlite_store.generation() != before
        assert await sqlite_store.find_user("bob") is not None
    finally:
        await other.close()


async def test_generation_sees_another_process(tmp_path: Path, sqlite_store: IamStore) -> None:
    before = sqlite_store.generation()
    script = textwrap.dedent(
        f"""
        import asyncio
        from pathlib import Path
        from app.iam import IamStore
        from app.iam.records import User

        async def main():
            store = IamStore(Path({str(tmp_path / "iam.db")!r}))
            await store.open()
            await store.create_user(User("from-elsewhere", ""))
            await store.close()

        asyncio.run(main())
        """
    )
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, timeout=30)
    assert sqlite_store.generation() != before
    assert await sqlite_store.find_user("from-elsewhere") is not None


async def test_generation_is_cheap(store: IamStore) -> None:
    n = 2000
    start = time.perf_counter()
    for _ in range(n):
        store.generation()
    per_call = (time.perf_counter() - start) / n
    assert per_call < 100e-6, f"{per_call * 1e6:.1f} µs per call"  # ~4 µs measured here


async def test_concurrent_writers_in_two_processes(tmp_path: Path, sqlite_store: IamStore) -> None:
    """Writers in several processes wait for each other (busy timeout), none fails."""
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from pathlib import Path
        from app.iam import IamStore
        from app.iam.records import Group

        async def main(tag):
            store = IamStore(Path({str(tmp_path / "iam.db")!r}))
            await store.open()
            for i in range(40):
                await store.create_group(Group(f"{{tag}}-{{i}}", ""))
            await store.close()

        asyncio.run(main(sys.argv[1]))
        """
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, tag], cwd=ROOT) for tag in ("p", "q")]
    for i in range(40):
        await sqlite_store.create_group(Group(f"here-{i}", ""))
    assert [p.wait(30) for p in procs] == [0, 0]
    assert len(await sqlite_store.list_groups()) == 120


async def test_blocking_calls_stay_off_the_event_loop(store: IamStore) -> None:
    """While the database thread is busy the loop keeps running."""
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    try:
        await store._db.read(lambda conn: time.sleep(0.05))
    finally:
        task.cancel()
    assert ticks > 10


async def test_closed_store_is_unavailable(tmp_path: Path) -> None:
    from app.core.errors import Unavailable

    store = IamStore(tmp_path / "iam.db")
    await store.open()
    await store.close()
    with pytest.raises(Unavailable):
        await store.find_user("x")


async def test_database_file_is_private_even_with_umask_0(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        store = IamStore(tmp_path / "iam.db")
        await store.open()
        await store.close()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "iam.db").stat().st_mode) == 0o600


async def test_generation_never_raises_and_reports_a_change_when_unsure(
    sqlite_store: IamStore,
) -> None:
    before = sqlite_store.generation()
    assert sqlite_store._db._watch is not None
    sqlite_store._db._watch.close()  # any SQLite failure on the watch connection
    first = sqlite_store.generation()
    assert first != before
    assert sqlite_store.generation() != first
