"""Fixtures for authn: real RSA keys, a fake clock, requests, and the fake IAM on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

import pytest
from starlette.requests import Request

from tests.authn.tokens import NOW, Signer
from tests.support.fake_iam import FakeIam
from tests.support.servers import serve


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


@pytest.fixture
async def iam() -> AsyncIterator[FakeIam]:
    """The IAM's JWKS endpoint on loopback; tests change what it serves and count its hits."""
    fake = FakeIam()
    async with serve(fake) as base_url:
        fake.url = base_url
        yield fake
