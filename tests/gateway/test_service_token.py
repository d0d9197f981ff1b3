"""The gateway's service token: issued once, reused, renewed at half its lifetime."""

from __future__ import annotations

from typing import cast

from app.gateway.service_token import ServiceToken
from app.iam.tokens import IssuedToken, TokenIssuer


class FakeIssuer:
    def __init__(self, clock: list[float], lifetime: int = 3600) -> None:
        self.clock, self.lifetime, self.issued = clock, lifetime, 0

    def issue(self, uid: str) -> IssuedToken:
        self.issued += 1
        now = int(self.clock[0])
        return IssuedToken(uid=uid, exp=now + self.lifetime, token=f"{uid}-{self.issued}")


async def test_cached_then_renewed_before_expiry() -> None:
    now = [1000.0]
    issuer = FakeIssuer(now)
    token = ServiceToken(cast(TokenIssuer, issuer), "logway-gateway", clock=lambda: now[0])
    assert await token() == "logway-gateway-1"
    now[0] += 1700
    assert await token() == "logway-gateway-1"
    now[0] += 200  # past half the lifetime, well before expiry
    assert await token() == "logway-gateway-2"
    token.invalidate()
    assert await token() == "logway-gateway-3"


async def test_short_lifetime_still_renews_before_expiry() -> None:
    now = [0.0]
    issuer = FakeIssuer(now, lifetime=30)
    token = ServiceToken(cast(TokenIssuer, issuer), "gw", clock=lambda: now[0])
    assert await token() == "gw-1"
    now[0] = 29
    assert await token() == "gw-2"
