"""Login: a password or a service login token in, an auth token out.

Failed attempts are limited per uid and per client address (login_limits.py: in this process,
or across replicas on PostgreSQL). An attempt is
counted as a failure *before* the credential is checked and refunded on success, so a burst
of concurrent guesses cannot all slip in while the first ones are still hashing.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import NoReturn

from app.authn import KeyLoadError, TokenRejected
from app.authz.audit import audit_event
from app.core.audience import is_addressable
from app.core.errors import AuthenticationError, Unavailable
from app.iam.errors import TooManyRequests
from app.iam.login_limits import LocalLoginLimits, LoginLimits
from app.iam.passwords import dummy_hash, verify_password
from app.iam.ratelimit import whole_seconds
from app.iam.records import User
from app.iam.settings import IamSettings
from app.iam.signing import SigningKeys
from app.iam.store import IamStore
from app.iam.tokens import IssuedToken, TokenIssuer, service_public_key, verify_service_login

LOGIN_FAILED = "Login failed: invalid credentials"
# Lifetime of a token addressed to a node reader or Mesos (a service login naming it).
ADDRESSED_TOKEN_LIFETIME = 300


class Login:
    def __init__(
        self,
        settings: IamSettings,
        store: IamStore,
        keys: SigningKeys,
        issuer: TokenIssuer,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        limits: LoginLimits | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._keys = keys
        self._issuer = issuer
        self._clock = clock
        self._dummy_hash: str | None = None
        self._hashing = asyncio.Semaphore(os.cpu_count() or 1)
        self._limits = limits or LocalLoginLimits(
            settings.login_failures_per_uid,
            settings.login_failures_per_address,
            settings.login_failure_window,
            clock=monotonic,
        )

    async def with_password(self, uid: str, password: str, *, srcip: str) -> IssuedToken:
        await self._admit(uid, srcip)
        user = await self._lookup(uid, srcip)
        # Unknown users, service accounts and password-less users cost one hash as well, so
        # that the answer's timing does not tell which uids exist.
        stored = user.password_hash if user is not None else None
        reference = stored or await self._dummy()
        # scrypt is CPU and memory bound (32 MiB each at the default cost): no more at once
        # than there are CPUs, whatever the number of concurrent logins.
        async with self._hashing:
            ok = await asyncio.to_thread(verify_password, password, reference)
        if user is None:
            self._refuse(uid, srcip, "unknown user")
        if stored is None or not ok:
            self._refuse(uid, srcip, "no password set" if stored is None else "wrong password")
        return await self._grant(uid, srcip, "password")

    async def with_service_token(self, uid: str, token: str, *, srcip: str) -> IssuedToken:
        await self._admit(uid, srcip)
        user = await self._lookup(uid, srcip)
        if user is None or user.public_key is None:
            self._refuse(uid, srcip, "unknown user" if user is None else "not a service account")
        try:
            key = service_public_key(user.public_key)
            claims = verify_service_login(
                token,
                key,
                iam_kids=[k.kid for k in self._keys.published()],
                now=self._clock(),
                leeway=self._settings.leeway,
            )
        except TokenRejected as exc:
            self._refuse(uid, srcip, f"service login token: {exc.reason}")
        except KeyLoadError:
            self._refuse(uid, srcip, "stored public key unusable")
        if claims.uid != uid:
            self._refuse(uid, srcip, "service login token for another uid")
        if claims.aud is not None and not is_addressable(claims.aud):
            self._refuse(uid, srcip, "service login token for an unknown audience")
        return await self._grant(uid, srcip, "service login token", audience=claims.aud)

    async def _lookup(self, uid: str, srcip: str) -> User | None:
        try:
            return await self._store.find_user(uid)
        except Unavailable:
            # The store is down (503): not a failed attempt of the caller's.
            await self._limits.refund(uid, srcip)
            raise

    async def prepare(self) -> None:
        """Make the dummy hash now, so no login pays for it."""
        await self._dummy()

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await asyncio.to_thread(dummy_hash, self._settings.scrypt_log2_n)
        return self._dummy_hash

    async def _admit(self, uid: str, srcip: str) -> None:
        wait = await self._limits.admit(uid, srcip)
        if wait > 0:
            audit_event("login", "deny", uid=uid, srcip=srcip, reason="too many failed logins")
            raise TooManyRequests(
                "Too many failed login attempts; try again later", retry_after=whole_seconds(wait)
            )

    def _refuse(self, uid: str, srcip: str, reason: str) -> NoReturn:
        audit_event("login", "deny", uid=uid, srcip=srcip, reason=reason)
        raise AuthenticationError(LOGIN_FAILED)

    async def _grant(
        self, uid: str, srcip: str, method: str, *, audience: str | None = None
    ) -> IssuedToken:
        await self._limits.succeeded(uid, srcip)
        audit_event("login", "allow", uid=uid, srcip=srcip, reason=method)
        if audience is None:
            return self._issuer.issue(uid)
        # A Logway extension: a service login token naming a node reader (or Mesos) gets a
        # token addressed to it alone, living minutes (issue 12 §2).
        lifetime = min(self._issuer.lifetime, ADDRESSED_TOKEN_LIFETIME)
        return self._issuer.issue(uid, audience=audience, lifetime=lifetime)
