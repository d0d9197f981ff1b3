"""Identity and access figures: token verification (cold and cached), authorization
decisions (the embedded ACL authorizer over a real SQLite store), and logins per second
against a real gateway process."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.authz import AclAuthorizer
from app.authz.model import Action, PrincipalKind
from app.core.logging import configure_logging, shutdown_logging
from app.devcluster.commands import logway_argv
from app.iam import Iam, IamSettings
from app.iam.records import Ace, Acl, User
from bench import report
from bench.report import Verdict

COLD_TOKENS = 2000
CACHED_CALLS = 100_000
DECISIONS = 100_000
LOGIN_SECONDS = 5.0
PASSWORD = "bench-superuser-password"


@dataclass(frozen=True, slots=True)
class IdentityFigures:
    cold_verify_us: float
    cached_verify_us: float
    decision_us: float
    decision_audited_us: float
    logins_per_s: float
    login_clients: int


async def _verification(iam: Iam) -> tuple[float, float]:
    tokens = [iam.issuer.issue(f"user{i}").token for i in range(COLD_TOKENS)]
    auth = iam.authenticator
    started = time.perf_counter()
    for token in tokens:  # each verified once: no cache hit
        await auth.verify(token)
    cold = (time.perf_counter() - started) / COLD_TOKENS
    token = tokens[0]
    started = time.perf_counter()
    for _ in range(CACHED_CALLS):
        await auth.verify(token)
    cached = (time.perf_counter() - started) / CACHED_CALLS
    return cold * 1e6, cached * 1e6


GRANTED = "dcos:mesos:agent:task:app_id:/dev"
ASKED = "dcos:mesos:agent:task:app_id:/dev/api"  # covered by the grant, hierarchically


async def _grant_bob(iam: Iam) -> None:
    await iam.store.create_user(User("bob", "bench"))
    await iam.store.acls.create(Acl(GRANTED, "bench"))
    await iam.store.acls.grant(Ace(GRANTED, PrincipalKind.USER, "bob", Action.READ))


async def _decisions(authorizer: AclAuthorizer) -> float:
    """A cached decision: the same (uid, rid, action), with the store's change check."""
    assert (await authorizer.authorize("bob", ASKED, Action.READ)).allowed
    started = time.perf_counter()
    for _ in range(DECISIONS):
        await authorizer.authorize("bob", ASKED, Action.READ)
    return (time.perf_counter() - started) / DECISIONS * 1e6


async def _in_process(directory: Path) -> tuple[float, float, float, float]:
    settings = IamSettings(db_path=directory / "iam.sqlite3", keys_dir=directory / "keys")
    async with Iam(settings) as iam:
        cold, cached = await _verification(iam)
        await _grant_bob(iam)
        authorizer = AclAuthorizer(iam.store)
        quiet = await _decisions(authorizer)
        # Again with the audit line written, as the gateway runs (queue handler; the
        # listener writes to /dev/null so the bench output stays readable).
        with open(os.devnull, "w") as sink:
            configure_logging("INFO", stream=sink)
            try:
                audited = await _decisions(authorizer)
            finally:
                shutdown_logging()
    return cold, cached, quiet, audited


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def _logins(base: str, clients: int) -> float:
    body = {"uid": "admin", "password": PASSWORD}
    done = 0
    deadline = time.perf_counter() + LOGIN_SECONDS

    async def client(http: httpx.AsyncClient) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            r = await http.post(f"{base}/acs/api/v1/auth/login", json=body)
            r.raise_for_status()
            done += 1

    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=30) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    return done / (time.perf_counter() - started)


def _login_rate(directory: Path, clients: int) -> float:
    port = _free_port()
    env = {**os.environ, "LOGWAY_IAM_SUPERUSER_PASSWORD": PASSWORD}
    cmd = logway_argv("gateway", "--port", str(port))
    proc = subprocess.Popen(
        [*cmd, "--data-dir", str(directory / "gateway"), "--log-level=WARNING"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{base}/acs/api/v1/auth/jwks", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        return asyncio.run(_logins(base, clients))
    finally:
        proc.terminate()
        proc.wait(10)


def measure(login_clients: int = 4) -> IdentityFigures:
    with tempfile.TemporaryDirectory(prefix="logway-bench-") as tmp:
        directory = Path(tmp)
        cold, cached, quiet, audited = asyncio.run(_in_process(directory))
        logins = _login_rate(directory, login_clients)
    return IdentityFigures(cold, cached, quiet, audited, logins, login_clients)


def run() -> list[Verdict]:
    print(report.section("identity and access"), flush=True)
    f = measure()
    rows = [
        ["RS256 verification, cold (cache miss)", f"{f.cold_verify_us:,.1f} µs/op"],
        ["verification, cached", f"{f.cached_verify_us:,.2f} µs/op"],
        ["authorization decision, cached", f"{f.decision_us:,.2f} µs/op"],
        ["  the same, audit line at INFO", f"{f.decision_audited_us:,.2f} µs/op"],
        [f"logins, password (scrypt), {f.login_clients} clients", f"{f.logins_per_s:,.1f}/s"],
    ]
    print(report.table(["measure", "figure"], rows))
    return [
        report.below("cold RS256 verification < 150 µs", f.cold_verify_us, 150, "{:,.1f} µs"),
        report.below("cached verification < 10 µs", f.cached_verify_us, 10, "{:,.2f} µs"),
        report.below("authorization decision < 10 µs", f.decision_us, 10, "{:,.2f} µs"),
        Verdict("logins per second", f"{f.logins_per_s:,.1f}/s", "no target"),
    ]
