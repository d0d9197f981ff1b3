"""The IAM's RS256 signing keys: generated on first run, rotated on demand, published as JWKS.

Layout of `keys_dir` (shared by every gateway worker on the host):

* `<kid>.pem` — a PKCS#8 private key, mode 0600; `kid` = hex SHA-256 of the public key's DER
  (SubjectPublicKeyInfo), as DC/OS's out-of-band verification docs describe.
* `keyring.json` — which kid signs now and when each previous one was retired. A retired key
  stays published until every token it signed has expired (retired_at + token lifetime +
  `RETIREMENT_GRACE`), then its file is deleted.
* `.lock` — `flock`ed around every change, so workers starting together create one key.

Workers notice another worker's rotation by `stat`ing `keyring.json` (at most once per
`REFRESH_INTERVAL`, and at once on an unknown kid).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.iam.errors import TooManyRequests
from app.iam.ratelimit import whole_seconds

log = logging.getLogger(__name__)

RSA_BITS = 2048
KEYRING_FILE = "keyring.json"
LOCK_FILE = ".lock"
REFRESH_INTERVAL = 1.0
# A worker that has not yet seen a rotation keeps signing with the old key for up to
# REFRESH_INTERVAL, and verifiers allow clock skew: keep retired keys this much longer.
RETIREMENT_GRACE = 120.0
# Rotations are an operator's act, not a loop's (issue 12 §5): one per this many seconds, and
# at most this many retired keys kept while their tokens may still be valid. A key is never
# dropped early (its tokens would fail); a rotation that would exceed the bound is refused,
# with the time until the oldest retired key's tokens have all expired.
MIN_ROTATION_INTERVAL = 60.0
MAX_RETIRED_KEYS = 4


class KeyFileError(RuntimeError):
    """The key directory is unusable (bad permissions, corrupt files)."""


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey = field(repr=False)
    retired_at: float | None = None

    def jwk(self) -> dict[str, str]:
        numbers = self.private_key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "alg": "RS256",
            "use": "sig",
            "kid": self.kid,
            "n": _b64uint(numbers.n),
            "e": _b64uint(numbers.e),
        }


@dataclass(frozen=True, slots=True)
class _State:
    current: SigningKey
    retired: tuple[SigningKey, ...]  # newest first
    signature: tuple[int, int, int]  # of keyring.json when read


def published(
    current: SigningKey, retired: tuple[SigningKey, ...], *, now: float, lifetime: float
) -> list[SigningKey]:
    """The current key first, then the retired keys whose tokens may still be unexpired (both
    key rings: files and database)."""

    def valid(key: SigningKey) -> bool:
        return key.retired_at is None or now < key.retired_at + lifetime + RETIREMENT_GRACE

    return [current, *filter(valid, retired)]


def kid_of(public_key: rsa.RSAPublicKey) -> str:
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


class KeyRing:
    def __init__(
        self,
        directory: Path,
        *,
        token_lifetime: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = directory
        self._lifetime = token_lifetime
        self._clock = clock
        self._state: _State | None = None
        self._cache: dict[str, rsa.RSAPrivateKey] = {}
        self._thread_lock = threading.Lock()
        self._checked_at = -REFRESH_INTERVAL

    @property
    def current(self) -> SigningKey:
        return self._loaded().current

    def published(self) -> list[SigningKey]:
        """The current key first, then retired keys whose tokens may still be unexpired."""
        state = self._loaded()
        return published(state.current, state.retired, now=self._clock(), lifetime=self._lifetime)

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [key.jwk() for key in self.published()]}

    def load(self) -> None:
        """Read the key ring, creating the first key on first run and dropping expired keys.
        Blocking (file I/O, maybe RSA generation): run it off the event loop."""
        with self._thread_lock, self._flock():
            ring = self._read_ring()
            if ring is None:
                ring = {"current": self._generate(), "retired": []}
                self._write_ring(ring)
            if self._prune(ring):
                self._write_ring(ring)
            self._state = self._materialize(ring)

    def rotate(self) -> SigningKey:
        """Make a new current key; the old one is retired now. Blocking."""
        with self._thread_lock, self._flock():
            ring = self._read_ring()
            if ring is None:
                raise KeyFileError(f"{self.directory / KEYRING_FILE} is missing")
            if self._prune(ring):
                self._write_ring(ring)
            self._check_rotation(ring)
            retired = [{"kid": ring["current"], "retired_at": self._clock()}, *ring["retired"]]
            ring = {"current": self._generate(), "retired": retired}
            self._prune(ring)
            self._write_ring(ring)
            self._state = self._materialize(ring)
            log.info("IAM signing key rotated: new kid %s", self._state.current.kid)
            return self._state.current

    async def refresh(self, *, force: bool = False) -> None:
        """Pick up another worker's rotation; cheap (one `stat`) unless the ring changed."""
        now = time.monotonic()
        if not force and now - self._checked_at < REFRESH_INTERVAL:
            return
        self._checked_at = now
        if self._signature() != self._loaded().signature:
            await asyncio.to_thread(self.load)

    # internals

    def _check_rotation(self, ring: dict[str, Any]) -> None:
        times = [float(e["retired_at"]) for e in ring["retired"]]
        check_rotation(times, now=self._clock(), lifetime=self._lifetime)

    def _loaded(self) -> _State:
        if self._state is None:
            raise RuntimeError("key ring not loaded")
        return self._state

    @contextlib.contextmanager
    def _flock(self) -> Iterator[None]:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _signature(self) -> tuple[int, int, int]:
        try:
            st = os.stat(self.directory / KEYRING_FILE)
        except FileNotFoundError:
            return (0, 0, 0)
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def _read_ring(self) -> dict[str, Any] | None:
        path = self.directory / KEYRING_FILE
        try:
            ring = json.loads(path.read_text())
            _check_ring(ring)
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            raise KeyFileError(f"{path}: corrupt key ring ({exc})") from None
        return ring  # type: ignore[no-any-return]

    def _write_ring(self, ring: dict[str, Any]) -> None:
        _write_private(self.directory / KEYRING_FILE, json.dumps(ring, indent=1).encode())

    def _prune(self, ring: dict[str, Any]) -> bool:
        now = self._clock()
        keep: list[dict[str, Any]] = []
        drop: list[dict[str, Any]] = []
        for entry in ring["retired"]:
            expired = now >= entry["retired_at"] + self._lifetime + RETIREMENT_GRACE
            (drop if expired else keep).append(entry)
        for entry in drop:
            (self.directory / f"{entry['kid']}.pem").unlink(missing_ok=True)
            self._cache.pop(entry["kid"], None)
            log.info("IAM signing key %s dropped: its tokens have expired", entry["kid"])
        ring["retired"] = keep
        return bool(drop)

    def _generate(self) -> str:
        key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
        kid = kid_of(key.public_key())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_private(self.directory / f"{kid}.pem", pem)
        self._cache[kid] = key
        log.info("IAM signing key generated: kid %s", kid)
        return kid

    def _materialize(self, ring: dict[str, Any]) -> _State:
        retired = sorted(ring["retired"], key=lambda e: -e["retired_at"])
        return _State(
            current=SigningKey(ring["current"], self._private_key(ring["current"])),
            retired=tuple(
                SigningKey(e["kid"], self._private_key(e["kid"]), float(e["retired_at"]))
                for e in retired
            ),
            signature=self._signature(),
        )

    def _private_key(self, kid: str) -> rsa.RSAPrivateKey:
        if kid in self._cache:
            return self._cache[kid]
        path = self.directory / f"{kid}.pem"
        try:
            mode = os.stat(path).st_mode
            if stat.S_IMODE(mode) & 0o077:
                raise KeyFileError(f"{path}: private key readable by others; chmod 600 it")
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise KeyFileError(f"{path}: unusable private key ({exc})") from None
        if not isinstance(key, rsa.RSAPrivateKey) or kid_of(key.public_key()) != kid:
            raise KeyFileError(f"{path}: not the RSA key its name says")
        self._cache[kid] = key
        return key


def _check_ring(ring: Any) -> None:
    if not isinstance(ring["current"], str):
        raise TypeError("current is not a kid")
    for entry in ring["retired"]:
        if not isinstance(entry["kid"], str) or not isinstance(entry["retired_at"], int | float):
            raise TypeError("malformed retired entry")


def _write_private(path: Path, data: bytes) -> None:
    """Write atomically, created 0600 from the start (never briefly world-readable)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, path)


def _b64uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def check_rotation(retired_at: list[float], *, now: float, lifetime: float) -> None:
    """Refuse (429, `TooManyRequests`) a rotation within `MIN_ROTATION_INTERVAL` of the last,
    or while `MAX_RETIRED_KEYS` retired keys still verify unexpired tokens (issue 12 §5).
    `retired_at`: when each retired key still kept was retired."""
    times = sorted(retired_at)
    if times and now - times[-1] < MIN_ROTATION_INTERVAL:
        raise TooManyRequests(
            f"Key rotation refused: the last was {now - times[-1]:.0f} s ago, at most one "
            f"per {MIN_ROTATION_INTERVAL:.0f} s",
            retry_after=whole_seconds(times[-1] + MIN_ROTATION_INTERVAL - now),
        )
    live = [t for t in times if now < t + lifetime + RETIREMENT_GRACE]
    if len(live) >= MAX_RETIRED_KEYS:
        free_at = live[0] + lifetime + RETIREMENT_GRACE
        raise TooManyRequests(
            f"Key rotation refused: {len(live)} retired keys still verify unexpired tokens "
            f"(at most {MAX_RETIRED_KEYS}); the oldest goes when its tokens have expired",
            retry_after=whole_seconds(free_at - now),
        )
