"""Gateway replicas on one PostgreSQL IAM store, all real: three `logway gateway` processes on
127.0.0.181-183, a PostgreSQL cluster of this module's own on 127.0.0.187 (so it can be
stopped), a node reader over a journald namespace on 127.0.0.184 and the Mesos simulator on
127.0.0.185. Every replica is a full IAM; changes made on one reach the others within 2 s;
the follow cap holds across replicas; a killed replica's slots come back; the database may
go away for 10 s."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from app.devcluster.commands import logway_argv
from app.devcluster.journald import JournaldNamespace
from app.devcluster.mesos import MesosSimulator, SimAgent, SimCluster
from app.devcluster.postgres import PostgresCluster
from tests.conftest import free_port, journald_available, new_namespace_name
from tests.gateway.support import GATEWAY_UID, Reader, add_user, login
from tests.support.journal import Sender
from tests.support.postgres import postgres_available
from tests.support.servers import stop
from tests.support.wait import wait_for

pytestmark = pytest.mark.skipif(
    not (journald_available() and postgres_available()), reason="needs root, journald, PostgreSQL"
)

HOSTS = ("127.0.0.181", "127.0.0.182", "127.0.0.183")
NODE, MESOS, PG = "127.0.0.184", "127.0.0.185", "127.0.0.187"
MASTER_ID = "5d1e6c2a-0000-4000-8000-0000000016a1"
AGENT = f"{MASTER_ID}-S0"
PASSWORD = "admin password for replica tests"
SECRET = "key-encryption secret for the replica tests"
LOGS = "dcos:adminrouter:ops:system-logs"
RANGE = f"/system/v1/agent/{AGENT}/logs/v1/range/?skip_prev=1"
STREAM = f"/system/v1/agent/{AGENT}/logs/v1/stream/?skip_prev=1"
SSE = {"Accept": "text/event-stream"}
CAP = 3
LEASE_TTL = 3.0
BOUND = 2.0  # changes reach every replica within this
START_TIMEOUT = 90.0


class Replica:
    """One `logway gateway` on the shared store; can be killed (-9) and started again."""

    def __init__(self, host: str, data_dir: Path, env: dict[str, str], mesos: str, port: int):
        self.port = free_port(host)
        self.url = f"http://{host}:{self.port}"
        self.log = data_dir.with_suffix(".log")
        self._argv = logway_argv(
            "gateway",
            f"--host={host}",
            f"--port={self.port}",
            f"--data-dir={data_dir}",
            f"--mesos={mesos}",
            f"--reader-port={port}",
            "--log-level=WARNING",
        )
        self._env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def spawn(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self._argv, stdout=out, stderr=subprocess.STDOUT, env=self._env
            )

    def wait(self) -> Replica:
        """Up to START_TIMEOUT: three replicas start at once on a shared, busy machine."""
        proc = self.proc
        assert proc is not None

        def answers() -> bool | None:
            assert proc.poll() is None, f"replica exited: {self.log.read_text()[-2000:]}"
            try:
                return httpx.get(f"{self.url}/acs/api/v1/auth/jwks", timeout=2).is_success or None
            except httpx.TransportError:
                return None

        wait_for(f"replica {self.url}", answers, timeout=START_TIMEOUT)
        return self

    def start(self) -> Replica:
        self.spawn()
        return self.wait()

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None


@dataclass
class Env:
    replicas: list[Replica]
    pg: PostgresCluster
    admin: dict[str, str]

    @property
    def urls(self) -> list[str]:
        return [r.url for r in self.replicas]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("replicas")
    pg_dir = Path(tempfile.mkdtemp(prefix="logway-pg-"))
    pg_dir.chmod(0o711)
    with contextlib.ExitStack() as stack:
        stack.callback(shutil.rmtree, pg_dir, True)
        pg = stack.enter_context(PostgresCluster(pg_dir / "c", host=PG, port=free_port(PG)))
        url = pg.create_database("logway")
        ns = stack.enter_context(JournaldNamespace(new_namespace_name()))
        cluster = SimCluster(master_id=MASTER_ID, agents=[SimAgent(AGENT, NODE)])
        sim = stack.enter_context(MesosSimulator(cluster, masters=[(MESOS, 0)]))
        port = free_port(NODE)
        variables = {
            **os.environ,
            "LOGWAY_IAM_DATABASE_URL": url,
            "LOGWAY_IAM_KEY_ENCRYPTION_KEY": SECRET,
            "LOGWAY_IAM_SUPERUSER_PASSWORD": PASSWORD,
            "LOGWAY_IAM_SCRYPT_LOG2_N": "12",
            "LOGWAY_GATEWAY_MAX_FOLLOWS_PER_IDENTITY": str(CAP),
            "LOGWAY_GATEWAY_STREAM_LEASE_TTL": str(LEASE_TTL),
        }
        replicas = [
            Replica(host, tmp / f"gw{i}", variables, sim.urls[0], port)
            for i, host in enumerate(HOSTS)
        ]
        for replica in replicas:
            stack.callback(replica.stop)
        # Started together: one creates the superuser and the first key, all agree.
        for replica in replicas:
            replica.spawn()
        for replica in replicas:
            replica.wait()
        jwks = f"{replicas[0].url}/acs/api/v1/auth/jwks"
        reader = Reader(ns.name, NODE, port, jwks, tmp / "reader.log")
        stack.callback(reader.stop)
        reader.start()
        sender = stack.enter_context(contextlib.closing(Sender(ns)))
        sender.send({"MESSAGE": "hello from the node"})
        sender.sync()
        admin = login(replicas[1].url, "admin", PASSWORD)
        add_user(replicas[2].url, admin, GATEWAY_UID, "gateway test password")
        try:
            yield Env(replicas, pg, admin)
        except BaseException:
            for replica in replicas:
                print(
                    f"--- {replica.log.name} ---\n{replica.log.read_text(errors='replace')[-3000:]}"
                )
            raise


def _grant(base: str, admin: dict[str, str], uid: str) -> None:
    acl = f"{base}/acs/api/v1/acls/{LOGS}"
    assert httpx.put(acl, json={}, headers=admin).status_code in (201, 409)
    r = httpx.put(f"{acl}/users/{uid}/read", headers=admin)
    assert r.status_code == 204, r.text


def _revoke(base: str, admin: dict[str, str], uid: str) -> None:
    r = httpx.delete(f"{base}/acs/api/v1/acls/{LOGS}/users/{uid}/read", headers=admin)
    assert r.status_code == 204, r.text


def _until(what: str, check: object, timeout: float) -> float:
    """Seconds until `check()` holds; fails past `timeout`."""
    start = time.monotonic()
    assert callable(check)
    while not check():
        assert time.monotonic() - start < timeout, f"{what}: not within {timeout} s"
        time.sleep(0.01)
    return time.monotonic() - start


def test_every_replica_is_the_same_iam(env: Env) -> None:
    documents = [httpx.get(f"{u}/acs/api/v1/auth/jwks").json() for u in env.urls]
    assert documents[1] == documents[0]
    assert documents[2] == documents[0]
    # Logged in through one replica, read through another.
    alice = add_user(env.urls[0], env.admin, "alice", "alice password")
    _grant(env.urls[1], env.admin, "alice")
    with httpx.Client(timeout=10) as client:
        wait_for(
            "the agent",
            lambda: client.get(env.urls[2] + RANGE, headers=alice).status_code == 200 or None,
        )
        for url in env.urls:
            r = client.get(url + RANGE, headers=alice)
            assert r.status_code == 200, r.text
            users = client.get(f"{url}/acs/api/v1/users", headers=env.admin).json()
            assert "alice" in {u["uid"] for u in users["array"]}


def test_grant_and_revoke_reach_every_replica_within_the_bound(env: Env) -> None:
    bob = add_user(env.urls[0], env.admin, "bob", "bob password")
    with httpx.Client(timeout=10) as client:

        def status(url: str) -> int:
            return client.get(url + RANGE, headers=bob).status_code

        assert {status(u) for u in env.urls} == {403}  # each replica caches the denial
        _grant(env.urls[0], env.admin, "bob")
        granted = max(_until("grant", lambda u=u: status(u) == 200, BOUND) for u in env.urls[1:])
        _revoke(env.urls[0], env.admin, "bob")
        revoked = max(_until("revoke", lambda u=u: status(u) == 403, BOUND) for u in env.urls[1:])
        print(f"\npropagation: grant {granted * 1000:.0f} ms, revoke {revoked * 1000:.0f} ms")
        # A deleted user: its token no longer authenticates on any replica (issue 12 §5).
        r = httpx.delete(f"{env.urls[1]}/acs/api/v1/users/bob", headers=env.admin)
        assert r.status_code == 204
        for url in env.urls:
            _until("deletion", lambda u=url: status(u) == 401, BOUND)


def test_a_revoke_on_one_replica_ends_an_open_stream_on_another(env: Env) -> None:
    """The change signal (NOTIFY) also drives the stream watcher of every replica: a follow
    opened through replica 1 ends, with its reason, once replica 0 revokes the grant."""
    fay = add_user(env.urls[0], env.admin, "fay", "fay password")
    _grant(env.urls[0], env.admin, "fay")
    rest: list[str] = []
    with httpx.Client(timeout=30) as client:
        wait_for(
            "fay's grant on replica 1",
            lambda: client.get(env.urls[1] + RANGE, headers=fay).status_code == 200 or None,
        )
        with client.stream("GET", env.urls[1] + STREAM, headers={**fay, **SSE}) as r:
            assert r.status_code == 200
            lines = r.iter_lines()
            next(lines)  # open, and past its first entry
            reader = threading.Thread(target=lambda: rest.extend(lines), daemon=True)
            reader.start()
            revoked = time.monotonic()  # from the revoke's request
            _revoke(env.urls[0], env.admin, "fay")
            reader.join(BOUND + 8.0)  # the change signal's bound + the watcher's period + load
            took = time.monotonic() - revoked
            assert not reader.is_alive(), f"the stream still runs {took:.1f} s after the revoke"
    print(f"\nrevoke on replica 0 ended a stream on replica 1 after {took * 1000:.0f} ms")
    assert "event: access-ended" in rest, rest
    assert "data: access revoked" in rest, rest


@contextlib.contextmanager
def following(client: httpx.Client, url: str, headers: dict[str, str]) -> Iterator[int]:
    with client.stream("GET", url + STREAM, headers={**headers, **SSE}) as r:
        lines = r.iter_lines()
        if r.status_code == 200:
            next(lines)
        else:
            r.read()
        yield r.status_code


def test_the_follow_cap_holds_across_replicas_and_a_dead_replica_frees_its_slots(env: Env) -> None:
    dave = add_user(env.urls[0], env.admin, "dave", "dave password")
    _grant(env.urls[0], env.admin, "dave")
    clients = [httpx.Client(timeout=30) for _ in env.urls]
    with contextlib.ExitStack() as held:
        for c in clients:
            held.callback(c.close)
        wait_for(
            "the agent",
            lambda: clients[0].get(env.urls[0] + RANGE, headers=dave).status_code == 200 or None,
        )
        costs = []
        for i in range(CAP):  # one follow on each replica: exactly the cap
            start = time.monotonic()
            assert held.enter_context(following(clients[i], env.urls[i], dave)) == 200
            costs.append(time.monotonic() - start)
        for i in range(3):
            with following(clients[i], env.urls[i], dave) as refused:
                assert refused == 429
        print(
            f"\nfollow open through a replica: {min(costs) * 1000:.1f}-{max(costs) * 1000:.1f} ms"
        )
        # kill -9 the replica holding one of them: its slot frees itself within the lease.
        env.replicas[2].kill()
        freed = _until(
            "slot freed",
            lambda: _probe(env.urls[0], dave),
            LEASE_TTL + 3,
        )
        print(f"slot of a killed replica free after {freed:.1f} s (lease {LEASE_TTL} s)")
    env.replicas[2].start()


def _probe(url: str, headers: dict[str, str]) -> bool:
    with httpx.Client(timeout=10) as client, following(client, url, headers) as status:
        return status == 200


def test_postgres_stopped_for_10_s(env: Env) -> None:
    erin = add_user(env.urls[0], env.admin, "erin", "erin password")
    _grant(env.urls[0], env.admin, "erin")
    with httpx.Client(timeout=15) as client:
        for url in env.urls:  # a decision cached on every replica
            assert client.get(url + RANGE, headers=erin).status_code == 200
        env.pg.stop()
        try:
            started = time.monotonic()
            seen = set()
            while time.monotonic() - started < 10:
                for url in env.urls:
                    login = client.post(
                        f"{url}/acs/api/v1/auth/login",
                        json={"uid": "erin", "password": "erin password"},
                    )
                    assert login.status_code == 503, login.text
                    assert "IAM store" in login.text
                    users = client.get(f"{url}/acs/api/v1/users", headers=env.admin)
                    seen.add(users.status_code)
                    # A token already verified, a decision already made: still served.
                    assert client.get(url + RANGE, headers=erin).status_code == 200
                time.sleep(0.5)
            assert seen == {503}
        finally:
            env.pg.start()
        for url in env.urls:
            _until(
                "recovery",
                lambda u=url: (
                    client.post(
                        f"{u}/acs/api/v1/auth/login",
                        json={"uid": "erin", "password": "erin password"},
                    ).status_code
                    == 200
                ),
                10,
            )
            users = client.get(f"{url}/acs/api/v1/users", headers=env.admin).json()
            assert {"alice", "erin"} <= {u["uid"] for u in users["array"]}
            assert client.get(url + RANGE, headers=erin).status_code == 200


def test_a_key_rotated_on_one_replica_verifies_on_all(env: Env) -> None:
    """Verification at the gateways: a verified token without the grant is 403, a refused
    one 401. (Node readers pick up a new key by their own JWKS refresh, up to 30 s later:
    this test runs last.)"""
    carol = add_user(env.urls[0], env.admin, "carol", "carol password")
    r = httpx.post(f"{env.urls[2]}/acs/api/v1/auth/rotate-keys", headers=env.admin)
    assert r.status_code in (200, 201, 204), r.text
    fresh_admin = login(env.urls[2], "admin", PASSWORD)  # signed with the new key
    fresh_carol = login(env.urls[1], "carol", "carol password")
    assert _kid(fresh_admin) != _kid(carol)
    with httpx.Client(timeout=10) as client:
        for url in env.urls:
            users = f"{url}/acs/api/v1/users"
            assert client.get(users, headers=fresh_admin).status_code == 200
            assert client.get(users, headers=fresh_carol).status_code == 403
            assert client.get(users, headers=carol).status_code == 403  # signed before
            assert client.get(users, headers=env.admin).status_code == 200  # signed before
            assert client.get(users, headers={"Authorization": "token=x.y.z"}).status_code == 401
        kids = [
            [k["kid"] for k in client.get(f"{u}/acs/api/v1/auth/jwks").json()["keys"]]
            for u in env.urls
        ]
    assert len(kids[0]) == 2
    assert kids[0][0] == _kid(fresh_admin)
    assert kids[1] == kids[0]
    assert kids[2] == kids[0]


def _kid(headers: dict[str, str]) -> str:
    import base64
    import json

    token = headers["Authorization"].removeprefix("token=")
    kid: str = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))["kid"]
    return kid
