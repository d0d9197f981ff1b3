"""The signing key ring in the shared database, for gateway replicas on PostgreSQL.

* `signing_keys` — one row per key: kid, the sealed PKCS#8 private key (sealing.py; never in
  clear), when it was created and retired. `keyring` — one row naming the current kid.
* The first replica to start creates the first key: the insert into `keyring` runs under the
  store's write lock and only when the row is absent, so the first writer wins and every
  other replica reads the winner's key.
* Rotation by any replica writes on the `keys` topic; the change signal (pg.py) tells every
  replica, which reloads at its next `refresh()` — at once when a token names an unknown kid.
* If the database cannot answer, the keys already loaded keep verifying and signing (tokens
  in flight keep working); the reload is tried again at the next refresh.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.core.errors import Unavailable
from app.iam.engine import TOPIC_KEYS, Connection, Engine
from app.iam.key_ring import (
    RETIREMENT_GRACE,
    RSA_BITS,
    KeyFileError,
    SigningKey,
    check_rotation,
    kid_of,
    published,
)
from app.iam.sealing import Sealer, SealError

log = logging.getLogger(__name__)

# Without any signal (listener down), reload at least this often.
MAX_AGE = 30.0
# A token naming an unknown kid reloads at most this often (a flood of made-up kids must not
# become a flood of queries).
FORCED_INTERVAL = 1.0


@dataclass(frozen=True, slots=True)
class _State:
    current: SigningKey
    retired: tuple[SigningKey, ...]  # newest first


@dataclass(frozen=True, slots=True)
class _Row:
    kid: str
    sealed: str
    retired_at: float | None


class StoredKeyRing:
    def __init__(
        self,
        db: Engine,
        sealer: Sealer,
        *,
        token_lifetime: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = db
        self._sealer = sealer
        self._lifetime = token_lifetime
        self._clock = clock
        self._state: _State | None = None
        self._cache: dict[str, rsa.RSAPrivateKey] = {}
        self._seen = -1
        self._loaded_at = 0.0
        self._forced_at = -FORCED_INTERVAL
        self._reloading: asyncio.Lock | None = None

    @property
    def current(self) -> SigningKey:
        return self._loaded().current

    def published(self) -> list[SigningKey]:
        state = self._loaded()
        return published(state.current, state.retired, now=self._clock(), lifetime=self._lifetime)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [key.jwk() for key in self.published()]}

    async def load(self) -> None:
        """Read the ring; on an empty database, create the first key (first writer wins)."""
        self._seen = self._db.changes(TOPIC_KEYS)
        rows = await self._db.read(_read_rows)
        if rows is None:
            kid, sealed = await asyncio.to_thread(self._generate)
            created = await self._db.write(
                lambda conn: _insert_first(conn, kid, sealed, self._clock()), topic=TOPIC_KEYS
            )
            if created:
                log.info("IAM signing key generated: kid %s (first replica)", kid)
            rows = await self._db.read(_read_rows)
            if rows is None:
                raise KeyFileError("the signing key ring is still empty after creating it")
        self._state = await asyncio.to_thread(self._materialize, *rows)
        self._loaded_at = time.monotonic()

    async def rotate(self) -> SigningKey:
        """A new current key for every replica; the old one is retired now."""
        kid, sealed = await asyncio.to_thread(self._generate)
        now = self._clock()
        expired_before = now - self._lifetime - RETIREMENT_GRACE
        lifetime = self._lifetime
        await self._db.write(
            lambda conn: _rotate(conn, kid, sealed, now, expired_before, lifetime), topic=TOPIC_KEYS
        )
        await self.load()
        log.info("IAM signing key rotated: new kid %s", kid)
        return self.current

    async def refresh(self, *, force: bool = False) -> None:
        now = time.monotonic()
        signalled = self._db.changes(TOPIC_KEYS) != self._seen
        forced = force and now - self._forced_at >= FORCED_INTERVAL
        if not (signalled or forced or now - self._loaded_at >= MAX_AGE):
            return
        if forced:
            self._forced_at = now
        if self._reloading is None:
            self._reloading = asyncio.Lock()
        async with self._reloading:
            if (
                self._db.changes(TOPIC_KEYS) == self._seen
                and not forced
                and (time.monotonic() - self._loaded_at < MAX_AGE)
            ):
                return  # another caller reloaded meanwhile
            try:
                await self.load()
            except Unavailable as exc:
                # Keep signing and verifying with what we have; try again next time.
                self._loaded_at = time.monotonic()
                log.warning("IAM signing keys not reloaded: %s", exc)

    # internals

    def _loaded(self) -> _State:
        if self._state is None:
            raise RuntimeError("key ring not loaded")
        return self._state

    def _generate(self) -> tuple[str, str]:
        key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
        kid = kid_of(key.public_key())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self._cache[kid] = key
        return kid, self._sealer.seal(pem, kid=kid)

    def _materialize(self, current: str, rows: list[_Row]) -> _State:
        by_kid = {row.kid: row for row in rows}
        if current not in by_kid:
            raise KeyFileError(f"the current signing key {current} is missing")
        retired = sorted(
            (r for r in rows if r.retired_at is not None and r.kid != current),
            key=lambda r: -(r.retired_at or 0.0),
        )
        return _State(
            current=SigningKey(current, self._private_key(by_kid[current])),
            retired=tuple(SigningKey(r.kid, self._private_key(r), r.retired_at) for r in retired),
        )

    def _private_key(self, row: _Row) -> rsa.RSAPrivateKey:
        key = self._cache.get(row.kid)
        if key is not None:
            return key
        try:
            loaded = serialization.load_pem_private_key(
                self._sealer.open(row.sealed, kid=row.kid), password=None
            )
        except (SealError, ValueError) as exc:
            raise KeyFileError(str(exc)) from None
        if not isinstance(loaded, rsa.RSAPrivateKey) or kid_of(loaded.public_key()) != row.kid:
            raise KeyFileError(f"signing key {row.kid}: not the RSA key its kid says")
        self._cache[row.kid] = loaded
        return loaded


def _read_rows(conn: Connection) -> tuple[str, list[_Row]] | None:
    found = conn.execute("SELECT current_kid FROM keyring WHERE id = 1").fetchone()
    if found is None:
        return None
    rows = [
        _Row(str(kid), str(sealed), None if retired is None else float(retired))
        for kid, sealed, retired in conn.execute(
            "SELECT kid, private_key, retired_at FROM signing_keys"
        )
    ]
    return str(found[0]), rows


def _insert_first(conn: Connection, kid: str, sealed: str, now: float) -> bool:
    if conn.execute("SELECT 1 FROM keyring WHERE id = 1").fetchone() is not None:
        return False  # another replica was first
    conn.execute(
        "INSERT INTO signing_keys (kid, private_key, created_at) VALUES (?, ?, ?)",
        (kid, sealed, now),
    )
    conn.execute("INSERT INTO keyring (id, current_kid) VALUES (1, ?)", (kid,))
    return True


def _rotate(
    conn: Connection, kid: str, sealed: str, now: float, expired_before: float, lifetime: float
) -> None:
    found = conn.execute("SELECT current_kid FROM keyring WHERE id = 1").fetchone()
    if found is None:
        raise KeyFileError("the signing key ring is empty")
    retired = conn.execute(
        "SELECT retired_at FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at >= ?",
        (expired_before,),
    ).fetchall()
    check_rotation([float(r[0]) for r in retired], now=now, lifetime=lifetime)
    conn.execute(
        "INSERT INTO signing_keys (kid, private_key, created_at) VALUES (?, ?, ?)",
        (kid, sealed, now),
    )
    conn.execute("UPDATE signing_keys SET retired_at = ? WHERE kid = ?", (now, found[0]))
    conn.execute("UPDATE keyring SET current_kid = ? WHERE id = 1", (kid,))
    conn.execute(
        "DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at < ?",
        (expired_before,),
    )
