"""Request -> Identity (ARCHITECTURE §2, seam "request → identity").

`authenticate` answers `None` (no credentials), an `Identity`, or raises `AuthenticationError`
(credentials present but bad); `Unavailable` only when JWKS keys were never loaded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx
from starlette.requests import Request

from app.authn.cache import DEFAULT_CACHE_SIZE, VerifiedTokens
from app.authn.errors import Reason, TokenRejected
from app.authn.extract import extract_token
from app.authn.jwks import DEFAULT_TTL, MIN_REFRESH_INTERVAL, JwksSource
from app.authn.verification_keys import KeySet, KeySource, StaticKeys
from app.authn.verify import (
    DEFAULT_LEEWAY,
    MAX_LEEWAY,
    Claims,
    parse,
    require_cryptography_backend,
    verify,
)

log = logging.getLogger(__name__)

NO_AUTH_UID = "no-auth"


@dataclass(frozen=True, slots=True)
class Identity:
    uid: str
    # Kept to forward the caller's own credential where the design calls for it; kept out of
    # repr so that logging an Identity cannot leak it.
    token: str | None = field(default=None, repr=False)
    exp: int | None = None
    # When the authenticator stops accepting the token (exp + its leeway, epoch seconds): an
    # open stream ends then (app.authz.access). None: never (no token, `--no-auth`).
    valid_until: float | None = None


class Authenticator(Protocol):
    async def authenticate(self, request: Request) -> Identity | None: ...


class JwtAuthenticator:
    """Verifies DC/OS-style RS256 tokens (`uid` + `exp`) against a `KeySource`.

    `allowed_uids`: when non-empty, only these verified uids are let in (the node reader admits
    the gateway's service account only); `None` or empty admits any verified uid.
    `audience`: the `aud` a token must carry (a node reader's own address); None admits only
    tokens without one, so a credential addressed to a node or to Mesos is refused elsewhere.
    """

    def __init__(
        self,
        keys: KeySource,
        *,
        allowed_uids: Collection[str] | None = None,
        audience: str | None = None,
        leeway: int = DEFAULT_LEEWAY,
        cache_size: int = DEFAULT_CACHE_SIZE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        require_cryptography_backend()
        if not 0 <= leeway <= MAX_LEEWAY:
            raise ValueError(f"leeway must be between 0 and {MAX_LEEWAY} seconds")
        self._keys = keys
        self._allowed = frozenset(allowed_uids) if allowed_uids else None
        self._audience = audience
        self._leeway = leeway
        self._cache = VerifiedTokens(cache_size)
        self._clock = clock

    @classmethod
    def from_pem_file(
        cls,
        path: str | Path,
        *,
        kid: str | None = None,
        allowed_uids: Collection[str] | None = None,
        audience: str | None = None,
    ) -> JwtAuthenticator:
        keys = StaticKeys(KeySet.from_pem_file(path, kid=kid))
        return cls(keys, allowed_uids=allowed_uids, audience=audience)

    @classmethod
    def from_jwks_url(
        cls,
        url: str,
        *,
        client: httpx.AsyncClient,
        allowed_uids: Collection[str] | None = None,
        audience: str | None = None,
        ttl: float = DEFAULT_TTL,
        min_refresh_interval: float = MIN_REFRESH_INTERVAL,
    ) -> JwtAuthenticator:
        """Keys fetched lazily on first use; `client` stays the caller's to close."""
        source = JwksSource(url, client=client, ttl=ttl, min_refresh_interval=min_refresh_interval)
        return cls(source, allowed_uids=allowed_uids, audience=audience)

    async def authenticate(self, request: Request) -> Identity | None:
        token = extract_token(request)
        if token is None:
            return None
        try:
            claims = await self.verify(token)
            if claims.aud != self._audience:
                raise TokenRejected(Reason.AUDIENCE)
            if self._allowed is not None and claims.uid not in self._allowed:
                raise TokenRejected(Reason.UID_NOT_ALLOWED, "uid not allowed")
        except TokenRejected as exc:
            log.debug("token rejected: %s", exc.reason)
            raise
        return Identity(
            uid=claims.uid, token=token, exp=claims.exp, valid_until=claims.exp + self._leeway
        )

    async def verify(self, token: str) -> Claims:
        """Verify a bare token (no HTTP, no allow-list), through the cache."""
        now = self._clock()
        hit = self._cache.lookup(token, now=now)
        if hit is not None:
            # These exact bytes were verified before. The key is looked up again: that keeps
            # JWKS refreshes going and drops entries whose key has been rotated out.
            try:
                current = await self._keys.key_for(hit.kid)
            except TokenRejected:
                self._cache.discard(token)
                raise
            if current == hit.key:
                return hit.claims
            self._cache.discard(token)
        unverified = parse(token)
        key = await self._keys.key_for(unverified.kid)
        claims = verify(unverified, key, now=now, leeway=self._leeway)
        self._cache.put(token, key=key, claims=claims, kid=unverified.kid)
        return claims


class NoAuth:
    """`--no-auth`: everyone is the same fixed local identity; credentials are ignored."""

    def __init__(self, uid: str = NO_AUTH_UID) -> None:
        self._identity = Identity(uid=uid)
        log.warning("authentication is DISABLED: every request is served as uid %r", uid)

    async def authenticate(self, request: Request) -> Identity | None:
        return self._identity
