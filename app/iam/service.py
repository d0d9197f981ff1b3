"""`Iam`: the embedded IAM as one object — store, signing keys, token issuer and verifier,
login — built explicitly and opened/closed by the owner's lifespan.

    iam = Iam(settings)                              # at app construction (nothing opened)
    serve_iam(app, iam, authorizer)                  # authorizer over iam.store (GrantSource)
    ...
    async with iam:                                  # in the lifespan: opens DB, loads keys
        created = await bootstrap(iam)               # superuser on an empty store
        yield
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import TracebackType

from app.authn import JwtAuthenticator
from app.authn.known import KnownUids
from app.iam.key_ring import KeyRing, SigningKey
from app.iam.login import Login
from app.iam.login_limits import LoginLimits, SharedLoginLimits
from app.iam.pg import PgDatabase
from app.iam.sealing import Sealer
from app.iam.settings import IamSettings
from app.iam.signing import SigningKeys
from app.iam.store import IamStore
from app.iam.stored_keys import StoredKeyRing
from app.iam.tokens import IamKeys, TokenIssuer


class Iam:
    def __init__(self, settings: IamSettings, *, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self._ring: KeyRing | None = None
        self._stored: StoredKeyRing | None = None
        self.keys: SigningKeys
        if settings.database_url is None:
            self.store = IamStore(settings.db_path, busy_timeout=settings.busy_timeout)
            self.keys = self._ring = KeyRing(
                settings.keys_dir, token_lifetime=settings.token_lifetime, clock=clock
            )
        else:
            engine = PgDatabase(
                settings.database_url.get_secret_value(), stale_grants=settings.stale_grants
            )
            self.store = IamStore(engine)
            self.keys = self._stored = StoredKeyRing(
                engine,
                Sealer(settings.sealing_secret()),
                token_lifetime=settings.token_lifetime,
                clock=clock,
            )
        self.issuer = TokenIssuer(self.keys, lifetime=settings.token_lifetime, clock=clock)
        # Verifies the IAM's own auth tokens: for the admin API here, and for the gateway.
        # Tokens of uids the store does not hold are refused (KnownUids).
        self.authenticator = KnownUids(
            JwtAuthenticator(IamKeys(self.keys), leeway=settings.leeway, clock=clock), self.store
        )
        limits: LoginLimits | None = None
        if isinstance(self.store.engine, PgDatabase):
            limits = SharedLoginLimits(
                self.store.engine,
                settings.login_failures_per_uid,
                settings.login_failures_per_address,
                settings.login_failure_window,
            )
        self.login = Login(settings, self.store, self.keys, self.issuer, clock=clock, limits=limits)

    async def open(self) -> None:
        await self.store.open()
        try:
            if self._ring is not None:
                await asyncio.to_thread(self._ring.load)
            if self._stored is not None:
                await self._stored.load()
            await self.login.prepare()
        except BaseException:
            await self.store.close()
            raise

    async def close(self) -> None:
        await self.store.close()

    async def __aenter__(self) -> Iam:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def jwks(self) -> dict[str, list[dict[str, str]]]:
        await self.keys.refresh()
        return self.keys.jwks()

    async def rotate_keys(self) -> SigningKey:
        if self._stored is not None:
            return await self._stored.rotate()
        assert self._ring is not None
        return await asyncio.to_thread(self._ring.rotate)
