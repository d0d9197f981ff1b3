"""The gateway's service token: issued once, reused, renewed at half its lifetime."""

from __future__ import annotations

from pathlib import Path
from typing import cast

from jose import jwt

from app.gateway.node_credentials import embedded_node_tokens
from app.gateway.service_token import ServiceToken
from app.iam.key_ring import KeyRing
from app.iam.tokens import IssuedToken, TokenIssuer


class FakeIssuer:
    def __init__(self, clock: list[float], lifetime: int = 3600) -> None:
        self.clock, self.lifetime, self.issued = clock, lifetime, 0
        self.current_kid = "k1"

    def issue(
        self, uid: str, *, audience: str | None = None, lifetime: int | None = None
    ) -> IssuedToken:
        self.issued += 1
        now = int(self.clock[0])
        exp = now + (self.lifetime if lifetime is None else lifetime)
        return IssuedToken(uid=uid, exp=exp, token=f"{uid}-{self.issued}-{audience}")


async def test_cached_then_renewed_before_expiry() -> None:
    now = [1000.0]
    issuer = FakeIssuer(now)
    token = ServiceToken(cast(TokenIssuer, issuer), "logway-gateway", clock=lambda: now[0])
    assert await token() == "logway-gateway-1-None"
    now[0] += 1700
    assert await token() == "logway-gateway-1-None"
    now[0] += 200  # past half the lifetime, well before expiry
    assert await token() == "logway-gateway-2-None"
    token.invalidate()
    assert await token() == "logway-gateway-3-None"


async def test_short_lifetime_still_renews_before_expiry() -> None:
    now = [0.0]
    issuer = FakeIssuer(now, lifetime=30)
    token = ServiceToken(cast(TokenIssuer, issuer), "gw", clock=lambda: now[0])
    assert await token() == "gw-1-None"
    now[0] = 29
    assert await token() == "gw-2-None"


async def test_a_key_rotation_gets_a_token_signed_with_the_new_key(tmp_path: Path) -> None:
    keys = KeyRing(tmp_path, token_lifetime=3600)
    keys.load()
    token = ServiceToken(TokenIssuer(keys, lifetime=3600), "logway-gateway")
    first = await token()
    assert await token() == first
    old_kid = jwt.get_unverified_header(first)["kid"]
    keys.rotate()
    second = await token()
    assert second != first
    assert jwt.get_unverified_header(second)["kid"] == keys.current.kid != old_kid
    assert await token() == second


async def test_node_tokens_are_minted_cached_and_renewed_per_node() -> None:
    now = [1000.0]
    issuer = FakeIssuer(now)
    tokens = embedded_node_tokens(
        cast(TokenIssuer, issuer), "gw", lifetime=300, clock=lambda: now[0]
    )
    a, b = "logway-node:10.0.0.1:61001", "logway-node:10.0.0.2:61001"
    assert await tokens(a) == f"gw-1-{a}"
    assert await tokens(b) == f"gw-2-{b}"
    assert await tokens(a) == f"gw-1-{a}"  # cached per node
    now[0] += 151  # past half of the node lifetime (300 s), not of the IAM's (3600 s)
    assert await tokens(a) == f"gw-3-{a}"
    assert len(tokens) == 2
