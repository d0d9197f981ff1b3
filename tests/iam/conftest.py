"""Fixtures for the IAM: settings over tmp_path, a fake authorizer, and the IAM's router served
by a real uvicorn on 127.0.0.1 (lifespan on, as the gateway will run it): one server per test
module (`shared`, `client`) or one per test (`isolated`, `isolated_client`)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr

from app.authz.model import SUPERUSER_RID, Action, Authorizer, Decision, GrantSource
from app.core.problems import install_error_handlers
from app.iam import Iam, IamSettings, bootstrap, serve_iam
from tests.conftest import free_port
from tests.support.postgres import fresh_database

ADMIN = "admin"
ADMIN_PASSWORD = "correct horse battery staple"
BASE = "/acs/api/v1"


class Clock:
    """An injectable wall clock (seconds since the epoch)."""

    def __init__(self, now: float = 1_800_000_000) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_settings(
    tmp_path: Path, *, database_url: str | None = None, **overrides: Any
) -> IamSettings:
    """Settings over `tmp_path` (SQLite), or over `database_url` (PostgreSQL)."""
    values: dict[str, Any] = {
        "db_path": tmp_path / "iam.db",
        "keys_dir": tmp_path / "keys",
        "superuser_uid": ADMIN,
        "superuser_password": SecretStr(ADMIN_PASSWORD),
        "scrypt_log2_n": 10,  # fast tests; the default is 15
    }
    if database_url is not None:
        values["database_url"] = SecretStr(database_url)
        values["key_encryption_key"] = SecretStr(SEALING_SECRET)
    return IamSettings(**(values | overrides))


SEALING_SECRET = "test key-encryption secret, 32 bytes or more"
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="module", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The store engine: every test using it runs against both (ARCHITECTURE.md §2)."""
    name: str = request.param
    return name


def database_for(backend: str, request: pytest.FixtureRequest) -> str | None:
    """A fresh PostgreSQL database for `backend` "postgresql", None for SQLite."""
    if backend == "sqlite":
        return None
    return fresh_database(request.getfixturevalue("pg_cluster"))


@pytest.fixture
def new_settings(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Callable[..., IamSettings]:
    """Settings on this test's backend; each call is a new, empty store."""
    count = itertools.count()

    def make(**overrides: Any) -> IamSettings:
        directory = tmp_path / f"iam{next(count)}"
        return make_settings(directory, database_url=database_for(backend, request), **overrides)

    return make


@pytest.fixture
def settings(new_settings: Callable[..., IamSettings]) -> IamSettings:
    return new_settings()


class FakeAuthorizer:
    """Exact rid match over the store's grants; `dcos:superuser full` allows everything.
    (The real hierarchical `AclAuthorizer` is another layer's, tested there.)"""

    def __init__(self, source: GrantSource) -> None:
        self.source = source

    async def authorize(self, uid: str, rid: str, action: Action) -> Decision:
        for grant in await self.source.grants_for(uid):
            if grant.rid == SUPERUSER_RID and grant.action is Action.FULL:
                return Decision.ALLOW
            if grant.rid == rid and action.granted_by(grant.action):
                return Decision.ALLOW
        return Decision.DENY


def create_app(iam: Iam, authorizer: Authorizer | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with iam:
            app.state.bootstrapped = await bootstrap(iam)
            yield

    app = FastAPI(lifespan=lifespan)
    install_error_handlers(app)
    serve_iam(app, iam, authorizer or FakeAuthorizer(iam.store))
    return app


@dataclass(frozen=True)
class Served:
    url: str
    iam: Iam


@contextlib.contextmanager
def run_server(iam: Iam, authorizer: Authorizer | None = None) -> Iterator[Served]:
    """The IAM's app under a real uvicorn on a free 127.0.0.1 port, in a thread with its own
    event loop (so one server can outlive a test's loop), lifespan included."""
    port = free_port()
    config = uvicorn.Config(
        create_app(iam, authorizer), host="127.0.0.1", port=port, log_level="warning", ws="none"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.005)
        yield Served(f"http://127.0.0.1:{port}", iam)
    finally:
        server.should_exit = True
        thread.join(10)


class Responses:
    """Every response a test's client saw: none may be a 5xx."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, int]] = []

    async def record(self, response: httpx.Response) -> None:
        self.seen.append((response.request.method, str(response.url), response.status_code))


@pytest.fixture
def responses() -> Iterator[Responses]:
    recorder = Responses()
    yield recorder
    server_errors = [r for r in recorder.seen if r[2] >= 500]
    assert not server_errors, f"5xx answers: {server_errors}"


@pytest.fixture(scope="module")
def shared(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """One server per test module and backend. Login limits are out of the way: tests share
    an address; the limits are tested on `isolated` servers."""
    settings = make_settings(
        tmp_path_factory.mktemp("iam"),
        database_url=database_for(backend, request),
        login_failures_per_uid=1000,
        login_failures_per_address=1000,
    )
    with run_server(Iam(settings)) as served:
        yield served


@pytest.fixture
def isolated(settings: IamSettings) -> Iterator[Served]:
    """A server of this test's own, default limits."""
    with run_server(Iam(settings)) as served:
        yield served


@asynccontextmanager
async def http(served: Served, responses: Responses) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=served.url + BASE, timeout=10, event_hooks={"response": [responses.record]}
    ) as c:
        yield c


@pytest.fixture
async def client(shared: Served, responses: Responses) -> AsyncIterator[httpx.AsyncClient]:
    async with http(shared, responses) as c:
        yield c


@pytest.fixture
async def isolated_client(
    isolated: Served, responses: Responses
) -> AsyncIterator[httpx.AsyncClient]:
    async with http(isolated, responses) as c:
        yield c


async def login(client: httpx.AsyncClient, uid: str, password: str) -> str:
    """A token for `uid`; the client does not keep the cookie (tests say how they call)."""
    r = await client.post("/auth/login", json={"uid": uid, "password": password})
    assert r.status_code == 200, r.text
    client.cookies.clear()
    token: str = r.json()["token"]
    return token


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"token={token}"}


@pytest.fixture
async def admin(client: httpx.AsyncClient) -> dict[str, str]:
    """Headers of the bootstrapped superuser."""
    return auth(await login(client, ADMIN, ADMIN_PASSWORD))
