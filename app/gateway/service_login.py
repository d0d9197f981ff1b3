"""The gateway's own token from a remote IAM: a service login there (reference §5) with the
`service_uid` account's private key, cached and renewed at half its life.

    POST <iam>/acs/api/v1/auth/login  {"uid": ..., "token": RS256 {uid, exp} signed by the key}
    -> {"token": <the IAM's auth token>}

The answer is verified against the IAM's JWKS (the verifier callers' tokens go through) before
it is used: its `exp` sets the renewal, and a token whose key the IAM stops publishing (an IAM
reset with new keys) is replaced at once, as the embedded `ServiceToken` follows a rotation,
instead of being refused by every node reader until its renewal.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable
from typing import Protocol

import httpx

from app.authn import Claims, TokenRejected
from app.authn.sign import TokenSigner
from app.core.errors import Unavailable
from app.core.http import ServiceCallFailed, call_service
from app.gateway.service_token import RENEW_FRACTION
from app.iam.client import LOGIN_PATH

log = logging.getLogger(__name__)

LOGIN_TIMEOUT = 10.0
MAX_ANSWER_BYTES = 64 * 1024
# After a failed login, the least wait before the next attempt: a wrong key or a missing
# account must not hammer the IAM (which would lock the uid out with 429s besides).
RETRY_INTERVAL = 5.0


class TokenVerifier(Protocol):
    async def verify(self, token: str) -> Claims: ...


class _LoginFailed(Exception):
    pass


class RemoteServiceToken:
    """A `ServiceCredential`: `await token()` -> the current auth token for `uid`."""

    def __init__(
        self,
        iam_url: str,
        uid: str,
        key: TokenSigner,
        *,
        client: httpx.AsyncClient,
        verifier: TokenVerifier,
        audience: str | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        base = httpx.URL(iam_url)
        self.url = base.copy_with(path=base.path.rstrip("/") + LOGIN_PATH)
        self.uid = uid
        self.audience = audience
        self._key = key
        self._client = client
        self._verifier = verifier
        self._clock = clock
        self._monotonic = monotonic
        self._lock = asyncio.Lock()
        self._current: str | None = None
        self._exp = 0.0
        self._renew_at = 0.0
        self._retry_at = -math.inf  # monotonic
        self._last_failure = ""

    async def __call__(self) -> str:
        current = await self._usable(renewing=True)
        if current is not None:
            return current
        async with self._lock:
            # Whoever waited here behind a login finds it done.
            current = await self._usable(renewing=True)
            if current is not None:
                return current
            fallback = await self._usable(renewing=False)
            if self._monotonic() < self._retry_at:
                return self._or_fail(fallback)
            try:
                self._current, self._exp = await self._login()
            except _LoginFailed as exc:
                self._retry_at = self._monotonic() + RETRY_INTERVAL
                self._last_failure = str(exc)
                kept = "keeping the current token" if fallback else "no token"
                log.warning(
                    "service login of %r at %s failed: %s; %s", self.uid, self.url, exc, kept
                )
                return self._or_fail(fallback)
            now = self._clock()
            self._renew_at = now + max(self._exp - now, 0.0) * (1 - RENEW_FRACTION)
            return self._current

    def invalidate(self) -> None:
        """Log in again on the next call."""
        self._current = None

    async def _usable(self, *, renewing: bool) -> str | None:
        """The current token if it is still good: before its renewal time (`renewing`) or
        before it expires, and signed with a key the IAM still publishes."""
        current = self._current
        if current is None or self._clock() >= (self._renew_at if renewing else self._exp):
            return None
        try:
            await self._verifier.verify(current)
        except TokenRejected:
            if self._current is current:
                self._current = None
            return None
        except Unavailable:
            pass  # the JWKS cannot be fetched now: the readers keep their keys too
        return current

    def _or_fail(self, fallback: str | None) -> str:
        if fallback is None:
            raise Unavailable(f"service login at the IAM failed: {self._last_failure}")
        return fallback

    async def _login(self) -> tuple[str, float]:
        login = self._key.login_token(self.uid, now=self._clock(), audience=self.audience)
        body = {"uid": self.uid, "token": login}
        request = httpx.Request(
            "POST",
            self.url,
            json=body,
            headers={"Accept": "application/json"},
            extensions={"timeout": httpx.Timeout(LOGIN_TIMEOUT).as_dict()},
        )
        try:
            answer = await call_service(
                self._client, request, limit=MAX_ANSWER_BYTES, service="the IAM"
            )
        except ServiceCallFailed as exc:
            raise _LoginFailed(exc.message) from None
        token = _token_of(answer.body)
        try:
            claims = await self._verifier.verify(token)
        except TokenRejected as exc:
            raise _LoginFailed(f"its token does not verify by its JWKS ({exc.reason})") from None
        except Unavailable:
            raise _LoginFailed("its JWKS cannot be fetched to verify the token") from None
        if claims.uid != self.uid:
            raise _LoginFailed("its token is for another uid")
        if claims.aud != self.audience:
            raise _LoginFailed(f"its token is not addressed to {self.audience or 'no one'}")
        return token, float(claims.exp)


def _token_of(answer: bytes) -> str:
    try:
        document = json.loads(answer)
    except (ValueError, RecursionError):
        raise _LoginFailed("answer is not JSON") from None
    token = document.get("token") if isinstance(document, dict) else None
    if not isinstance(token, str) or not token:
        raise _LoginFailed("answer has no token")
    return token
