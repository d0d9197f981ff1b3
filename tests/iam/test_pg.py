"""What only the PostgreSQL engine has: replicas sharing one database hear each other's changes
(LISTEN/NOTIFY), migrate once, share one sealed key ring; and a database that goes away and
comes back (a cluster of this module's own, stopped and started)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from pydantic import SecretStr

from app.core.errors import AuthenticationError, Unavailable
from app.devcluster.postgres import PostgresCluster
from app.iam import Iam, IamStore, TooManyRequests, bootstrap
from app.iam.engine import TOPIC_IAM, TOPIC_RESYNC
from app.iam.key_ring import KeyFileError
from app.iam.pg import PgDatabase
from app.iam.records import User
from app.iam.schema import MIGRATIONS
from tests.conftest import free_port
from tests.iam.conftest import ADMIN, ADMIN_PASSWORD, make_settings
from tests.support.postgres import PG_HOST, fresh_database, postgres_available

PROPAGATION_BOUND = 2.0


@pytest.fixture
def url(pg_cluster: PostgresCluster) -> str:
    return fresh_database(pg_cluster)


@pytest.fixture
async def replicas(url: str) -> AsyncIterator[tuple[IamStore, IamStore]]:
    a, b = IamStore(PgDatabase(url)), IamStore(PgDatabase(url))
    await a.open()
    await b.open()
    yield a, b
    await b.close()
    await a.close()


async def test_a_change_on_one_replica_reaches_the_other_within_the_bound(
    replicas: tuple[IamStore, IamStore],
) -> None:
    a, b = replicas
    heard: asyncio.Queue[tuple[str, float]] = asyncio.Queue()
    unsubscribe = b.subscribe(lambda topic: heard.put_nowait((topic, time.monotonic())))
    before = b.generation()
    delays = []
    for i in range(5):
        start = time.monotonic()
        await a.create_user(User(f"u{i}", ""))
        topic, at = await asyncio.wait_for(heard.get(), PROPAGATION_BOUND)
        assert topic == TOPIC_IAM
        delays.append(at - start)
    assert b.generation() != before
    assert await b.find_user("u4") is not None
    assert max(delays) < PROPAGATION_BOUND
    print(f"\nchange signal: {min(delays) * 1000:.1f}-{max(delays) * 1000:.1f} ms")
    unsubscribe()
    await a.delete_user("u0")
    await asyncio.sleep(0.2)  # nothing to await: an unsubscribed listener must stay silent
    assert heard.empty()


async def test_the_writer_hears_its_own_change_once(replicas: tuple[IamStore, IamStore]) -> None:
    a, _ = replicas
    heard: asyncio.Queue[str] = asyncio.Queue()
    a.subscribe(heard.put_nowait)
    before = a.generation()
    await a.create_user(User("x", ""))
    assert a.generation() == before + 1  # counted on commit, not again on the echo
    assert await asyncio.wait_for(heard.get(), PROPAGATION_BOUND) == TOPIC_IAM
    assert a.generation() == before + 1


async def test_replicas_starting_together_migrate_once(url: str) -> None:
    stores = [IamStore(PgDatabase(url)) for _ in range(4)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT version FROM schema_version").fetchall()
        assert rows == [(len(MIGRATIONS),)]
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_a_newer_schema_is_refused(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version VALUES (99)")
    with pytest.raises(RuntimeError, match="newer"):
        await IamStore(PgDatabase(url)).open()


async def test_replicas_share_one_sealed_key_ring(url: str, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, database_url=url)
    iams = [Iam(settings) for _ in range(3)]
    await asyncio.gather(*(iam.open() for iam in iams))  # first writer wins
    try:
        documents = [await iam.jwks() for iam in iams]
        assert len(documents[0]["keys"]) == 1
        assert documents[1] == documents[0]
        assert documents[2] == documents[0]
        with psycopg.connect(url) as conn:
            stored = conn.execute("SELECT private_key FROM signing_keys").fetchall()
        assert len(stored) == 1
        assert "PRIVATE KEY" not in stored[0][0]
        assert stored[0][0].startswith("v1:")

        token = iams[1].issuer.issue("alice").token
        new_kid = (await iams[0].rotate_keys()).kid
        # Every replica publishes the new key within the bound, and the old one still.
        deadline = time.monotonic() + PROPAGATION_BOUND
        while True:
            kids = [[k["kid"] for k in (await iam.jwks())["keys"]] for iam in iams]
            if all(k[0] == new_kid for k in kids):
                break
            assert time.monotonic() < deadline, kids
            await asyncio.sleep(0.02)
        assert all(len(k) == 2 and k == kids[0] for k in kids)
        fresh = iams[2].issuer.issue("bob").token
        for iam in iams:
            assert (await iam.authenticator.verify(token)).uid == "alice"  # signed before
            assert (await iam.authenticator.verify(fresh)).uid == "bob"
    finally:
        await asyncio.gather(*(iam.close() for iam in iams))


async def test_another_key_encryption_secret_cannot_open_the_keys(url: str, tmp_path: Path) -> None:
    async with Iam(make_settings(tmp_path, database_url=url)):
        pass
    other = make_settings(
        tmp_path, database_url=url, key_encryption_key=SecretStr("another secret " * 4)
    )
    with pytest.raises(KeyFileError, match="decrypt"):
        async with Iam(other):
            pass


def test_postgres_needs_a_key_encryption_secret(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path, database_url="postgresql://x@127.0.0.1/db", key_encryption_key=None
    )
    with pytest.raises(ValueError, match="KEY_ENCRYPTION_KEY"):
        Iam(settings)
    with pytest.raises(ValueError, match="postgresql://"):
        make_settings(tmp_path, database_url="mysql://x@127.0.0.1/db")


async def test_failed_logins_are_counted_across_replicas(url: str, tmp_path: Path) -> None:
    settings = make_settings(tmp_path, database_url=url, login_failures_per_uid=3)
    async with Iam(settings) as a, Iam(settings) as b:
        await bootstrap(a)
        for replica in (a, b, a):  # three failures, spread over two replicas
            with pytest.raises(AuthenticationError):
                await replica.login.with_password(ADMIN, "wrong", srcip="10.0.0.1")
        for replica in (a, b):
            with pytest.raises(TooManyRequests):
                await replica.login.with_password(ADMIN, ADMIN_PASSWORD, srcip="10.0.0.2")
        # Another uid has its own count.
        with pytest.raises(AuthenticationError):
            await b.login.with_password("someone", "wrong", srcip="10.0.0.4")


# The database going away: a cluster of this module's own.


@pytest.fixture(scope="module")
def own_cluster() -> Iterator[PostgresCluster]:
    if not postgres_available():
        pytest.skip("PostgreSQL server binaries not found")
    directory = Path(tempfile.mkdtemp(prefix="logway-pg-"))
    directory.chmod(0o711)
    with PostgresCluster(directory / "c", host=PG_HOST, port=free_port(PG_HOST)) as cluster:
        yield cluster
    shutil.rmtree(directory, ignore_errors=True)


async def test_database_down_then_back(own_cluster: PostgresCluster) -> None:
    url = fresh_database(own_cluster)
    store = IamStore(PgDatabase(url, stale_grants=1.0))
    await store.open()
    heard: asyncio.Queue[str] = asyncio.Queue()
    store.subscribe(heard.put_nowait)
    try:
        await store.create_user(User("kept", ""))
        assert await asyncio.wait_for(heard.get(), PROPAGATION_BOUND) == TOPIC_IAM
        generation = store.generation()

        await asyncio.to_thread(own_cluster.stop)
        start = time.monotonic()
        with pytest.raises(Unavailable, match="IAM store unavailable"):
            await store.find_user("kept")
        with pytest.raises(Unavailable):
            await store.create_user(User("lost", ""))
        assert time.monotonic() - start < 5  # an answer, not a hang
        # Cached decisions stay trusted for `stale_grants`, then no longer.
        assert store.generation() == generation
        await asyncio.sleep(1.2)  # the bound itself is what is tested
        assert store.generation() != store.generation()

        await asyncio.to_thread(own_cluster.start)
        # Recovery without a restart: the next call reconnects; the signal comes back and
        # says anything may have changed meanwhile.
        assert await asyncio.wait_for(heard.get(), 10) == TOPIC_RESYNC
        assert (await store.get_user("kept")).uid == "kept"
        assert await store.find_user("lost") is None  # nothing half-written
        steady = store.generation()
        assert store.generation() == steady
        await store.create_user(User("after", ""))
    finally:
        await store.close()
