"""Login: a password or a service login token in, an auth token out.

Failed attempts are limited per uid and per client address (ratelimit.py). An attempt is
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
from app.core.errors import AuthenticationError
from app.iam.errors import TooManyRequests
from app.iam.key_ring import KeyRing
from app.iam.passwords import dummy_hash, verify_password
from app.iam.ratelimit import FailureLimiter, whole_seconds
from app.iam.settings import IamSettings
from app.iam.store import IamStore
from app.iam.tokens import IssuedToken, TokenIssuer, service_public_key, verify_service_login

LOGIN_FAILED = "Login failed: invalid credentials"


class Login:
    def __init__(
        self,
        settings: IamSettings,
        store: IamStore,
        keys: KeyRing,
        issuer: TokenIssuer,
        *,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._store = store
        self._keys = keys
        self._issuer = issuer
        self._clock = clock
        self._dummy_hash: str | None = None
        self._hashing = asyncio.Semaphore(os.cpu_count() or 1)
        window = settings.login_failure_window
        self._by_uid = FailureLimiter(settings.login_failures_per_uid, window, clock=monotonic)
        self._by_address = FailureLimiter(
            settings.login_failures_per_address, window, clock=monotonic
        )

    async def with_password(self, uid: str, password: str, *, srcip: str) -> IssuedToken:
        self._admit(uid, srcip)
        user = await self._store.find_user(uid)
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
        return self._grant(uid, srcip, "password")

    async def with_service_token(self, uid: str, token: str, *, srcip: str) -> IssuedToken:
        self._admit(uid, srcip)
        user = await self._store.find_user(uid)
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
        return self._grant(uid, srcip, "service login token")

    async def prepare(self) -> None:
        """Make the dummy hash now, so no login pays for it."""
        await self._dummy()

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await asyncio.to_thread(dummy_hash, self._settings.scrypt_log2_n)
        return self._dummy_hash

    def _admit(self, uid: str, srcip: str) -> None:
        wait = max(self._by_uid.retry_after(uid), self._by_address.retry_after(srcip))
        if wait > 0:
            audit_event("login", "deny", uid=uid, srcip=srcip, reason="too many failed logins")
            raise TooManyRequests(
                "Too many failed login attempts; try again later", retry_after=whole_seconds(wait)
            )
        self._by_uid.failed(uid)
        self._by_address.failed(srcip)

    def _refuse(self, uid: str, srcip: str, reason: str) -> NoReturn:
        audit_event("login", "deny", uid=uid, srcip=srcip, reason=reason)
        raise AuthenticationError(LOGIN_FAILED)

    def _grant(self, uid: str, srcip: str, method: str) -> IssuedToken:
        self._by_uid.reset(uid)
        self._by_address.refund(srcip)
        audit_event("login", "allow", uid=uid, srcip=srcip, reason=method)
        return self._issuer.issue(uid)
