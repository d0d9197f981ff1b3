"""Fixtures for authn: real RSA keys, a fake clock, requests, and a real loopback HTTP server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from tests.authn.tokens import NOW, Signer
from tests.conftest import free_port

JWKS_PATH = "/acs/api/v1/auth/jwks"


@dataclass(frozen=True)
class Keys:
    iam: Signer  # the IAM's current signing key
    iam2: Signer  # a second published IAM key
    attacker: Signer  # never published
    weak: Signer  # RSA-1024


@pytest.fixture(scope="session")
def keys() -> Keys:
    return Keys(
        iam=Signer.generate("iam-1"),
        iam2=Signer.generate("iam-2"),
        attacker=Signer.generate("evil"),
        weak=Signer.generate("weak", bits=1024),
    )


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def http_request(headers: Iterable[tuple[str, str]] = (), *, query_string: bytes = b"") -> Request:
    raw = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "raw_path": b"/",
        "query_string": query_string,
        "headers": raw,
    }
    return Request(scope)


@asynccontextmanager
async def serve(app: ASGIApp) -> AsyncIterator[str]:
    """Run `app` under uvicorn on a free 127.0.0.1 port; yields the base URL."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", ws="none"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn exited before starting")
            await asyncio.sleep(0.005)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@dataclass
class FakeIam:
    """The IAM's JWKS endpoint; tests change what it serves and count what it was asked."""

    document: Any = field(default_factory=lambda: {"keys": []})
    status: int = 200
    raw_body: bytes | None = None
    hits: int = 0
    url: str = ""

    def publish(self, *signers: Signer) -> None:
        self.document = {"keys": [s.jwk() for s in signers]}
        self.status, self.raw_body = 200, None

    async def jwks(self, request: Request) -> Response:
        self.hits += 1
        if self.raw_body is not None:
            return Response(self.raw_body, status_code=self.status, media_type="application/json")
        return JSONResponse(self.document, status_code=self.status)


@pytest.fixture
async def iam() -> AsyncIterator[FakeIam]:
    fake = FakeIam()
    app = Starlette(routes=[Route(JWKS_PATH, fake.jwks)])
    async with serve(app) as base_url:
        fake.url = base_url + JWKS_PATH
        yield fake
