"""Gateway replicas sharing one remote IAM, end to end: a `logway gateway` in embedded mode is
the cluster's IAM (127.0.0.91); two replicas in remote mode (127.0.0.92, .93) over the Mesos
simulator and real node readers (127.0.0.94, .95) on real journald namespaces, which trust the
IAM's JWKS and only the gateway's uid. The replicas log in with the service account's key on
disk; users log in through a replica, which forwards to the IAM."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from app.devcluster.commands import logway_argv
from app.devcluster.journald import JournaldNamespace
from app.devcluster.mesos import MesosSimulator, SimAgent, SimCluster, SimFramework, SimTask
from tests.authn.tokens import Signer
from tests.conftest import free_port, journald_available, new_namespace_name
from tests.gateway.support import GATEWAY_UID, Reader, grant, port_free_on
from tests.support.journal import Sender
from tests.support.servers import START_TIMEOUT, stop
from tests.support.wait import wait_for

pytestmark = pytest.mark.skipif(
    not journald_available(), reason="needs root and /lib/systemd/systemd-journald"
)

PASSWORD = "admin password for remote IAM tests"
IAM_HOST, REPLICA_HOSTS, READER_HOSTS = (
    "127.0.0.91",
    ("127.0.0.92", "127.0.0.93"),
    ("127.0.0.94", "127.0.0.95"),
)
MASTER_ID = "9a1b2c3d-0000-4000-8000-0000000000c9"
S0, S1 = f"{MASTER_ID}-S0", f"{MASTER_ID}-S1"
MARATHON = f"{MASTER_ID}-0000"
TASK, EXECUTOR, CONTAINER = "dev_web.instance-1", "dev_web.exec", "c-dev-web-1"
SYSTEM_LOGS = "dcos:adminrouter:ops:system-logs"
POLICYQUERY = "dcos:iam:policyquery"
CACHE_TTL = 1.0
LOG_TAIL = 3000


def sim_cluster() -> SimCluster:
    cluster = SimCluster(master_id=MASTER_ID)
    cluster.agents = [SimAgent(S0, READER_HOSTS[0]), SimAgent(S1, READER_HOSTS[1])]
    cluster.frameworks = [SimFramework(MARATHON, "marathon")]
    cluster.tasks = [
        SimTask(
            TASK,
            "web",
            MARATHON,
            S0,
            executor_id=EXECUTOR,
            containers=(CONTAINER,),
            labels={"DCOS_SPACE": "/dev/web"},
        )
    ]
    return cluster


class Gateway:
    """`logway gateway` on a fixed host:port (so it can be stopped and started again), its
    output in `log`."""

    def __init__(self, host: str, log: Path, *options: str, env: Mapping[str, str]) -> None:
        self.port = free_port(host)
        self.url = f"http://{host}:{self.port}"
        self.log = log
        self.argv = logway_argv(
            "gateway", f"--host={host}", f"--port={self.port}", "--log-level=WARNING", *options
        )
        self._env = {**os.environ, **env}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Gateway:
        assert self.proc is None
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, env=self._env
            )
        wait_for(f"{self.url} to answer", self._answers, timeout=START_TIMEOUT)
        return self

    def _answers(self) -> bool | None:
        assert self.proc is not None
        assert self.proc.poll() is None, self.tail()
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200 or None
        except httpx.TransportError:
            return None

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)
            self.proc = None

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-LOG_TAIL:]


@dataclass
class Env:
    tmp: Path
    iam: Gateway
    readers: dict[str, Reader]  # by agent
    senders: dict[str, Sender]  # by agent
    key: Path  # the gateway service account's private key
    mesos: str
    reader_port: int
    replicas: tuple[Gateway, ...] = ()

    @property
    def r1(self) -> str:
        return self.replicas[0].url

    @property
    def r2(self) -> str:
        return self.replicas[1].url

    def replica_env(self, **more: str) -> dict[str, str]:
        return {
            "LOGWAY_GATEWAY_IAM_URL": self.iam.url,
            "LOGWAY_GATEWAY_SERVICE_PRIVATE_KEY": str(self.key),
            "LOGWAY_GATEWAY_IAM_CACHE_TTL": str(CACHE_TTL),
            **more,
        }

    def replica(self, host: str, name: str, **env: str) -> Gateway:
        options = (f"--mesos={self.mesos}", f"--reader-port={self.reader_port}")
        return Gateway(host, self.tmp / f"{name}.log", *options, env=env)


def new_key(path: Path) -> str:
    """A 2048-bit RSA key written to `path` (0600); returns the public key's PEM."""
    signer = Signer.generate("unused")
    path.touch(mode=0o600)
    path.write_bytes(signer.private_pem)
    return signer.public_pem.decode()


def login(base: str, uid: str, password: str) -> dict[str, str]:
    r = httpx.post(
        f"{base}/acs/api/v1/auth/login", json={"uid": uid, "password": password}, timeout=15
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"token={r.json()['token']}"}


@contextlib.contextmanager
def running(gateway: Gateway) -> Iterator[Gateway]:
    try:
        yield gateway.start()
    except BaseException:
        print(f"--- {gateway.log.name} ---\n{gateway.tail()}")
        raise
    finally:
        gateway.stop()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("remote-iam")
    port = port_free_on(READER_HOSTS)
    iam_env = {"LOGWAY_IAM_SUPERUSER_PASSWORD": PASSWORD, "LOGWAY_IAM_SCRYPT_LOG2_N": "12"}
    # The IAM gateway knows no Mesos: it only serves the IAM.
    iam = Gateway(
        IAM_HOST,
        tmp / "iam.log",
        f"--data-dir={tmp / 'iam'}",
        "--mesos=http://127.0.0.91:9",
        env=iam_env,
    )
    with contextlib.ExitStack() as stack:
        namespaces = [
            stack.enter_context(JournaldNamespace(new_namespace_name())) for _ in READER_HOSTS
        ]
        sim = stack.enter_context(MesosSimulator(sim_cluster(), masters=[(READER_HOSTS[0], 0)]))
        stack.enter_context(running(iam))
        readers: dict[str, Reader] = {}
        senders: dict[str, Sender] = {}
        jwks = f"{iam.url}/acs/api/v1/auth/jwks"
        for agent, host, ns in zip((S0, S1), READER_HOSTS, namespaces, strict=True):
            readers[agent] = Reader(ns.name, host, port, jwks, tmp / f"reader-{host}.log")
            stack.callback(readers[agent].stop)
            readers[agent].start()
            senders[agent] = stack.enter_context(contextlib.closing(Sender(ns)))
        # The gateway's service account: its public key at the IAM, its private key on disk.
        key = tmp / "gateway-service.pem"
        public_pem = new_key(key)
        admin = login(iam.url, "admin", PASSWORD)
        r = httpx.put(
            f"{iam.url}/acs/api/v1/users/{GATEWAY_UID}",
            json={"description": "gateway replicas", "public_key": public_pem},
            headers=admin,
        )
        assert r.status_code == 201, r.text
        grant(iam.url, admin, POLICYQUERY, GATEWAY_UID)
        env = Env(tmp, iam, readers, senders, key, sim.urls[0], port)
        env.replicas = tuple(
            stack.enter_context(running(env.replica(host, f"replica-{n}", **env.replica_env())))
            for n, host in enumerate(REPLICA_HOSTS, 1)
        )
        yield env


def write(env: Env, agent: str, message: str, **fields: str) -> None:
    env.senders[agent].send({"MESSAGE": message, "SYSLOG_IDENTIFIER": "remoteiam", **fields})
    env.senders[agent].sync()


def get(url: str, headers: Mapping[str, str] | None = None) -> httpx.Response:
    return httpx.get(url, headers=dict(headers or {}), timeout=15, follow_redirects=False)


def until(what: str, url: str, headers: Mapping[str, str] | None, status: int) -> httpx.Response:
    """Poll `url` until it answers `status` (grants, revokes and outages take up to the
    decision cache's TTL to show)."""

    def check() -> httpx.Response | None:
        answer = get(url, headers)
        return answer if answer.status_code == status else None

    return wait_for(what, check)


def task_range(agent: str = S0) -> str:
    return (
        f"/system/v1/agent/{agent}/logs/v1/range/framework/{MARATHON}"
        f"/executor/{EXECUTOR}/container/{CONTAINER}"
    )


def test_login_through_one_replica_reads_through_the_other(env: Env) -> None:
    marker = f"task line {uuid.uuid4().hex}"
    write(
        env,
        S0,
        marker,
        FRAMEWORK_ID=MARATHON,
        EXECUTOR_ID=EXECUTOR,
        CONTAINER_ID=CONTAINER,
        STREAM="STDOUT",
        TASK_ID=TASK,
    )
    r = httpx.post(
        f"{env.r1}/acs/api/v1/auth/login", json={"uid": "admin", "password": PASSWORD}, timeout=15
    )
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    cookie = r.headers["set-cookie"]  # the IAM's own cookie, passed back
    assert cookie.startswith(f"dcos-acs-auth-cookie={token};")
    assert "httponly" in cookie.lower()
    headers = {"Authorization": f"token={token}"}
    through = until("the task's range on replica 2", env.r2 + task_range(), headers, 200)
    assert marker in through.text
    v2 = get(f"{env.r2}/system/v1/logs/v2/task/{TASK}/file/stdout", headers)
    assert v2.status_code == 200, v2.text
    assert marker in v2.text
    # The cookie alone authenticates at the replicas, and at the IAM through them.
    with httpx.Client(cookies={"dcos-acs-auth-cookie": token}, timeout=15) as browser:
        assert browser.get(env.r1 + task_range()).status_code == 200
        users = browser.get(f"{env.r2}/acs/api/v1/users")
        assert users.status_code == 200, users.text
        assert users.json()["array"][0]["uid"] == "admin"
    # The readers refuse the caller's token: the replicas send their own service token.
    direct = get(env.readers[S0].url + "/v1/range/?limit=1", headers)
    assert direct.status_code in (401, 403)


def test_the_service_account_key_on_disk_logs_in_through_a_replica(
    env: Env, tmp_path: Path
) -> None:
    """`logway login --service-account` against a replica: the IAM checks the self-signed token
    with the public key it holds. Its token is good at the gateway, not at a node reader: those
    accept only tokens addressed to themselves (issue 12 §2), which the replicas ask for."""
    result = subprocess.run(
        logway_argv(
            "login",
            f"--url={env.r2}",
            f"--service-account={GATEWAY_UID}",
            f"--private-key={env.key}",
        ),
        capture_output=True,
        text=True,
        env={**os.environ, "XDG_CONFIG_HOME": str(tmp_path)},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    stored = json.loads((tmp_path / "logway" / "credentials.json").read_text())
    assert stored["uid"] == GATEWAY_UID
    token = stored["token"]
    bearer = {"Authorization": f"token={token}"}
    assert get(f"{env.r2}/capabilities", bearer).status_code == 200
    direct = get(env.readers[S1].url + "/v1/range/?limit=1", bearer)
    assert direct.status_code == 401, direct.text


def test_grant_and_revoke_at_the_iam_bite_on_both_replicas(env: Env) -> None:
    admin = login(env.r1, "admin", PASSWORD)
    uid = f"ops-{uuid.uuid4().hex[:8]}"
    # The admin API through replica 1 (a PUT with a body), a login through replica 2.
    r = httpx.put(
        f"{env.r1}/acs/api/v1/users/{uid}",
        json={"password": "ops password 1"},
        headers=admin,
        timeout=15,
    )
    assert r.status_code == 201, r.text
    ops = login(env.r2, uid, "ops password 1")
    path = f"/system/v1/agent/{S1}/logs/v1/range/?limit=1"
    for base in (env.r1, env.r2):
        denied = get(base + path, ops)
        assert denied.status_code == 403, denied.text
        assert SYSTEM_LOGS in denied.text

    grant(env.iam.url, admin, SYSTEM_LOGS, uid)
    for base in (env.r1, env.r2):
        until(f"the grant on {base}", base + path, ops, 200)

    revoke = httpx.delete(
        f"{env.r2}/acs/api/v1/acls/{SYSTEM_LOGS}/users/{uid}/read", headers=admin, timeout=15
    )
    assert revoke.status_code == 204, revoke.text
    for base in (env.r1, env.r2):
        until(f"the revoke on {base}", base + path, ops, 403)


def test_a_deleted_uids_token_is_refused_even_where_any_caller_may_go(env: Env) -> None:
    """Authentication also finds the uid at the remote IAM (issue 12 §5): a validly signed,
    unexpired token of a deleted uid is 401 on a route open to any authenticated caller, once
    the replicas' cached answer expires (the IAM cache's TTL)."""
    admin = login(env.r1, "admin", PASSWORD)
    uid = f"gone-{uuid.uuid4().hex[:8]}"
    r = httpx.put(
        f"{env.iam.url}/acs/api/v1/users/{uid}", json={"password": "gone pw 1"}, headers=admin
    )
    assert r.status_code == 201, r.text
    caller = login(env.r2, uid, "gone pw 1")
    for base in (env.r1, env.r2):
        assert get(f"{base}/capabilities", caller).status_code == 200
    deleted = httpx.delete(f"{env.iam.url}/acs/api/v1/users/{uid}", headers=admin)
    assert deleted.status_code == 204, deleted.text
    deleted_at = time.monotonic()
    for base in (env.r1, env.r2):
        refused = until(f"{base} to refuse the deleted uid", f"{base}/capabilities", caller, 401)
        assert refused.headers["WWW-Authenticate"] == "acsjwt"
        assert get(f"{base}/mesos/master/state-summary", caller).status_code == 401
    assert time.monotonic() - deleted_at <= 2 * CACHE_TTL + 2.0


def test_the_iams_answers_pass_through(env: Env) -> None:
    bad = httpx.post(
        f"{env.r1}/acs/api/v1/auth/login",
        json={"uid": "admin", "password": "wrong password"},
        timeout=15,
    )
    assert bad.status_code == 401
    assert bad.headers["www-authenticate"] == "acsjwt"
    assert "Login failed" in bad.text
    assert httpx.get(f"{env.r1}/acs/api/v1/users", timeout=15).status_code == 401
    admin = login(env.r1, "admin", PASSWORD)
    invalid = httpx.put(
        f"{env.r1}/acs/api/v1/users/someone", json={"pasword": "x"}, headers=admin, timeout=15
    )
    assert invalid.status_code == 400
    assert "pasword: Extra inputs are not permitted" in invalid.text
    assert get(f"{env.r1}/acs/api/v1/no-such-thing", admin).status_code == 404
    jwks = get(f"{env.r2}/acs/api/v1/auth/jwks")
    assert jwks.json() == get(f"{env.iam.url}/acs/api/v1/auth/jwks").json()


@pytest.mark.parametrize(
    "path",
    [
        "/acs/api/v1/../../readyz",
        "/acs/api/v1/%2e%2e/%2E%2E/readyz",
        "/acs/api/v1/x%2F..%2F..%2F..%2Freadyz",
    ],
)
def test_dot_segments_never_leave_the_iam_api(env: Env, path: str) -> None:
    host, port = env.r1.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=15)
    try:
        conn.request("GET", path)  # sent as written: no client-side normalisation
        answer = conn.getresponse()
        assert answer.status == 400, answer.read()
        assert b"segments" in answer.read()
    finally:
        conn.close()


def test_a_replica_without_its_key_does_not_start(env: Env) -> None:
    cases = (
        ({}, "LOGWAY_GATEWAY_IAM_URL needs LOGWAY_GATEWAY_SERVICE_PRIVATE_KEY"),
        (
            {"LOGWAY_GATEWAY_SERVICE_PRIVATE_KEY": str(env.tmp / "missing.pem")},
            "missing.pem: No such file or directory",
        ),
    )
    for extra, message in cases:
        variables = {k: v for k, v in env.replica_env().items() if "PRIVATE_KEY" not in k}
        started = subprocess.run(
            env.replica(REPLICA_HOSTS[0], "no-key").argv,
            env={**os.environ, **variables, **extra},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert started.returncode == 2, started.stderr
        assert message in started.stderr
        assert "Traceback" not in started.stderr


def test_a_replica_whose_key_the_iam_does_not_know_serves_nothing(env: Env) -> None:
    stranger = env.tmp / "stranger.pem"
    new_key(stranger)
    replica = env.replica(
        REPLICA_HOSTS[1],
        "stranger",
        **env.replica_env(LOGWAY_GATEWAY_SERVICE_PRIVATE_KEY=str(stranger)),
    )
    admin = login(env.r1, "admin", PASSWORD)
    with running(replica):
        for path in (
            task_range(),
            f"/system/v1/agent/{S1}/logs/v1/range/",
            "/system/v1/logs/v1/range/",
        ):
            r = get(replica.url + path, admin)
            assert r.status_code == 503, (path, r.status_code, r.text)
        ready = get(f"{replica.url}/readyz")
        assert ready.status_code == 503
        assert "no service token" in ready.text
    assert "service login of 'logway-gateway'" in replica.tail()


def test_iam_down_means_503_never_allow(env: Env) -> None:
    admin = login(env.r1, "admin", PASSWORD)
    path = f"/system/v1/agent/{S0}/logs/v1/range/?limit=1"
    assert get(env.r1 + path, admin).status_code == 200
    assert get(f"{env.r1}/readyz").status_code == 200
    env.iam.stop()
    try:
        for base in (env.r1, env.r2):
            # Within the decision cache's TTL it may still answer 200; never after.
            r = until(f"{base} to refuse without its IAM", base + path, admin, 503)
            assert "IAM" in r.text
            # The probe's answer is reused for up to 2 s (/readyz answers anyone).
            ready = until(f"{base}/readyz to fail", f"{base}/readyz", None, 503)
            assert "remote IAM unreachable" in ready.text
            assert "cluster state" not in ready.text  # only what is wrong
        login_down = httpx.post(
            f"{env.r1}/acs/api/v1/auth/login",
            json={"uid": "admin", "password": PASSWORD},
            timeout=15,
        )
        assert login_down.status_code == 502
        assert "cannot reach the IAM" in login_down.text
    finally:
        env.iam.start()
    for base in (env.r1, env.r2):
        until(f"{base} to serve again", base + path, admin, 200)
        until(f"{base} to be ready again", f"{base}/readyz", None, 200)


@pytest.mark.parametrize("how", ["revoke", "delete"])
def test_a_revoke_at_the_iam_ends_a_replicas_open_follow(env: Env, how: str) -> None:
    """A replica has no change signal from a remote IAM: it decides its open streams again
    once per cache TTL (issue 12 §1), so a revoke there (or the uid's deletion) ends the
    follow within the TTL plus the replica's `stream_access_period` (2 s), with a last event
    saying why."""
    admin = login(env.r1, "admin", PASSWORD)
    uid = f"follow-{uuid.uuid4().hex[:8]}"
    r = httpx.put(
        f"{env.iam.url}/acs/api/v1/users/{uid}", json={"password": "follow pw 1"}, headers=admin
    )
    assert r.status_code == 201, r.text
    grant(env.iam.url, admin, SYSTEM_LOGS, uid)
    caller = login(env.r1, uid, "follow pw 1")
    marker = uuid.uuid4().hex
    url = f"{env.r1}/system/v1/agent/{S0}/logs/v1/stream/?filter=MARK:{marker}"
    headers = {**caller, "Accept": "text/event-stream"}
    # No ping comes for 15 s: a follow still open 10 s after the revoke times out the read.
    with httpx.stream("GET", url, headers=headers, timeout=httpx.Timeout(10.0)) as stream:
        assert stream.status_code == 200, stream.read()
        write(env, S0, "before the revoke", MARK=marker)
        lines = stream.iter_lines()
        for line in lines:
            if "before the revoke" in line:
                break
        gone = f"/users/{uid}" if how == "delete" else f"/acls/{SYSTEM_LOGS}/users/{uid}/read"
        revoke = httpx.delete(f"{env.iam.url}/acs/api/v1{gone}", headers=admin)
        assert revoke.status_code == 204, revoke.text
        revoked_at = time.monotonic()
        rest = list(lines)  # until the gateway ends the response, whole
        took = time.monotonic() - revoked_at
    assert rest[-3:-1] == ["event: access-ended", "data: access revoked"], rest
    assert took <= 2 * CACHE_TTL + 2.0 + 1.0, took
