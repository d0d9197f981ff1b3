"""Fakes for authz: an in-memory grant source, and a real loopback IAM policy-query server."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.authz.model import Action, Grant
from app.authz.remote import POLICY_QUERY_PATH


class FakeGrantSource:
    """Users, groups and memberships in dicts; every change bumps the generation."""

    def __init__(self) -> None:
        self.user_grants: dict[str, set[Grant]] = {}
        self.group_grants: dict[str, set[Grant]] = {}
        self.members: dict[str, set[str]] = {}  # group -> uids
        self.lookups: list[str] = []
        self._generation = 0

    def grant(self, uid: str, rid: str, action: Action = Action.READ) -> None:
        self.user_grants.setdefault(uid, set()).add(Grant(rid, action))
        self._generation += 1

    def revoke(self, uid: str, rid: str, action: Action = Action.READ) -> None:
        self.user_grants.get(uid, set()).discard(Grant(rid, action))
        self._generation += 1

    def grant_group(self, group: str, rid: str, action: Action = Action.READ) -> None:
        self.group_grants.setdefault(group, set()).add(Grant(rid, action))
        self._generation += 1

    def add_member(self, group: str, uid: str) -> None:
        self.members.setdefault(group, set()).add(uid)
        self._generation += 1

    def remove_member(self, group: str, uid: str) -> None:
        self.members.get(group, set()).discard(uid)
        self._generation += 1

    async def grants_for(self, uid: str) -> Iterable[Grant]:
        self.lookups.append(uid)
        grants = set(self.user_grants.get(uid, ()))
        for group, uids in self.members.items():
            if uid in uids:
                grants |= self.group_grants.get(group, set())
        return sorted(grants, key=lambda g: (g.rid, g.action))

    def generation(self) -> int:
        return self._generation


@pytest.fixture
def source() -> FakeGrantSource:
    return FakeGrantSource()


@dataclass(frozen=True)
class SeenRequest:
    raw_query: bytes
    params: list[tuple[str, str]]
    headers: dict[str, str]


@dataclass
class FakeIam:
    """Plays IAM's policy query: `{"allowed": uid in allowed}` unless told to misbehave."""

    url: str = ""
    allowed: set[str] = field(default_factory=set)
    status: int = 200
    body: bytes | None = None  # replaces the JSON answer when set
    stall: float = 0.0
    seen: list[SeenRequest] = field(default_factory=list)

    def reset(self) -> None:
        self.allowed, self.status, self.body, self.stall = set(), 200, None, 0.0
        self.seen.clear()

    async def policy_query(self, request: Request) -> Response:
        self.seen.append(
            SeenRequest(
                raw_query=request.scope["query_string"],
                params=request.query_params.multi_items(),
                headers=dict(request.headers.items()),
            )
        )
        if self.stall:
            await asyncio.sleep(self.stall)
        body = self.body
        if body is None:
            body = json.dumps({"allowed": request.query_params.get("uid") in self.allowed}).encode()
        return Response(body, status_code=self.status, media_type="application/json")


@pytest.fixture(scope="module")
def iam_server() -> Iterator[FakeIam]:
    """uvicorn on its own thread and event loop, on a port bound before it starts."""
    fake = FakeIam()
    app = Starlette(routes=[Route(POLICY_QUERY_PATH, fake.policy_query)])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", lifespan="off", ws="none", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(1000):
            if server.started or not thread.is_alive():
                break
            time.sleep(0.005)
        if not server.started:
            raise RuntimeError("the fake IAM did not start")
        fake.url = f"http://127.0.0.1:{port}"
        yield fake
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def iam(iam_server: FakeIam) -> FakeIam:
    iam_server.reset()
    return iam_server
