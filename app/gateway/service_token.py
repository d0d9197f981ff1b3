"""The gateway's own credential towards node readers (and Mesos): a token for
`settings.service_uid` from the embedded IAM, cached and renewed well before it expires.
With a remote IAM it comes from a service login there instead (app/gateway/service_login.py)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from app.iam.tokens import IssuedToken, TokenIssuer

# Renew once less than this share of the token's lifetime is left.
RENEW_FRACTION = 0.5


class ServiceCredential(Protocol):
    """What routes, the proxy, the Mesos client and the authorizer ask of the gateway's own
    credential, whichever IAM issues it."""

    uid: str

    async def __call__(self) -> str: ...

    def invalidate(self) -> None: ...


class ServiceToken:
    """`await service_token()` -> the current token string (a `TokenProvider`)."""

    def __init__(
        self,
        issuer: TokenIssuer,
        uid: str,
        *,
        audience: str | None = None,
        lifetime: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._issuer = issuer
        self.uid = uid
        self.audience = audience
        self._lifetime = lifetime
        self._clock = clock
        self._current: IssuedToken | None = None
        self._renew_at = 0.0
        self._kid: str | None = None  # the signing key of the current token

    async def __call__(self) -> str:
        now = self._clock()
        rotated = self._issuer.current_kid != self._kid
        if self._current is None or now >= self._renew_at or rotated:
            issued = self._issuer.issue(self.uid, audience=self.audience, lifetime=self._lifetime)
            lifetime = max(issued.exp - now, 0.0)
            self._current, self._renew_at = issued, issued.exp - lifetime * RENEW_FRACTION
            self._kid = self._issuer.current_kid
        return self._current.token

    def invalidate(self) -> None:
        """Issue a fresh token on the next call. A signing key rotation needs no call: the
        next token after it is signed with the new key."""
        self._current = None
