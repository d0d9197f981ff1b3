"""One fake IAM for every layer that calls the IAM's HTTP API: an ASGI app that answers the
service login, the JWKS, the policy query and a user lookup, records every request it is sent,
and hands any other path to a handler the test chooses.

Served on loopback (`tests.support.servers.serve`) where the socket matters (timeouts, stalls,
connection errors), or in process through `transport()` as httpx's `MockTransport` would be."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import httpx
from starlette.types import Receive, Scope, Send

from app.authn.remote_uids import USERS_PATH
from app.authz.remote import POLICY_QUERY_PATH
from app.iam.client import JWKS_PATH, LOGIN_PATH
from tests.authn.tokens import Signer

Handler = Callable[[httpx.Request], httpx.Response]


def not_found(_: httpx.Request) -> httpx.Response:
    return httpx.Response(404, text="Not Found")


@dataclass
class FakeIam:
    """The IAM's API as tests need it. `status` and `body`, when set, replace the answer of
    the login, the JWKS and the policy query alike; `down` refuses every request as a refused
    connection would (in process only: over a socket uvicorn would answer 500)."""

    url: str = ""  # base URL once served
    other: Handler = not_found  # any path but the three below
    issue: Callable[[str], str] = lambda uid: f"token-for-{uid}"  # the login's token
    jwks: Any = field(default_factory=lambda: {"keys": []})
    allowed: set[str] = field(default_factory=set)  # uids the policy query allows
    users: set[str] = field(default_factory=set)  # uids `GET /users/<uid>` finds (else 404)
    status: int = 200
    body: bytes | None = None
    stall: float = 0.0  # seconds the policy query waits before answering
    down: bool = False
    seen: list[httpx.Request] = field(default_factory=list)
    logins: list[dict[str, Any]] = field(default_factory=list)

    @property
    def last(self) -> httpx.Request:
        assert self.seen, "nothing reached the IAM"
        return self.seen[-1]

    @property
    def jwks_url(self) -> str:
        return self.url + JWKS_PATH

    @property
    def jwks_hits(self) -> int:
        return sum(1 for r in self.seen if r.url.path == JWKS_PATH)

    def publish(self, *signers: Signer) -> None:
        self.jwks = {"keys": [s.jwk() for s in signers]}
        self.status, self.body = 200, None

    def transport(self) -> httpx.ASGITransport:
        return httpx.ASGITransport(app=self)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        request = await _read(scope, receive)
        self.seen.append(request)
        if self.down:
            raise httpx.ConnectError("refused", request=request)
        response = await self._answer(request)
        await send(
            {
                "type": "http.response.start",
                "status": response.status_code,
                "headers": response.headers.raw,
            }
        )
        await send({"type": "http.response.body", "body": response.content})

    async def _answer(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == LOGIN_PATH:
            body = json.loads(request.content)
            self.logins.append(body)
            return self._built_in(lambda: {"token": self.issue(body["uid"])}, "Login failed")
        if path == JWKS_PATH:
            return self._built_in(lambda: self.jwks)
        if path == POLICY_QUERY_PATH:
            if self.stall:
                await asyncio.sleep(self.stall)
            uid = request.url.params.get("uid")
            return self._built_in(lambda: {"allowed": uid in self.allowed})
        if path.startswith(USERS_PATH) and request.method == "GET":
            uid = unquote(path.removeprefix(USERS_PATH))
            if "/" not in uid and uid not in self.users and self.body is None:
                return httpx.Response(404, text=f"User '{uid}' not found")
            return self._built_in(lambda: {"uid": uid, "description": ""})
        return self.other(request)

    def _built_in(self, document: Callable[[], Any], failed: str = "") -> httpx.Response:
        json_type = {"Content-Type": "application/json"}
        if self.body is not None:
            return httpx.Response(self.status, headers=json_type, content=self.body)
        if self.status != 200 and failed:
            return httpx.Response(self.status, text=failed)
        return httpx.Response(self.status, headers=json_type, content=json.dumps(document()))


async def _read(scope: Scope, receive: Receive) -> httpx.Request:
    """The request as sent: raw path and query, headers in order, the whole body."""
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    host, port = scope["server"]
    raw_path = scope.get("raw_path") or scope["path"].encode()
    target = raw_path.split(b"?")[0]
    if scope["query_string"]:
        target += b"?" + scope["query_string"]
    url = httpx.URL(scheme=scope["scheme"], host=host, port=port, raw_path=target)
    return httpx.Request(scope["method"], url, headers=scope["headers"], content=b"".join(chunks))
