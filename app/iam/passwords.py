"""Password hashes: scrypt with a per-user salt, its parameters stored with the hash.

Format (PHC-like): `scrypt$ln=15,r=8,p=1$<salt b64>$<hash b64>`. Hashing costs tens of
milliseconds of CPU and memory by design, so callers run it off the event loop.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
from dataclasses import dataclass

log = logging.getLogger(__name__)

SCHEME = "scrypt"
SALT_BYTES = 16
HASH_BYTES = 32
R = 8
P = 1
# Bounds on what a stored hash may ask for, so a tampered row cannot exhaust memory.
MAX_LOG2_N = 20
MIN_LOG2_N = 10
MAX_MEMORY = 256 * 1024 * 1024
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024

_FORMAT = re.compile(
    r"scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)"
)


@dataclass(frozen=True, slots=True)
class _Parsed:
    log2_n: int
    r: int
    p: int
    salt: bytes
    digest: bytes


def hash_password(password: str, *, log2_n: int) -> str:
    if not MIN_LOG2_N <= log2_n <= MAX_LOG2_N:
        raise ValueError(f"scrypt log2(N) must be between {MIN_LOG2_N} and {MAX_LOG2_N}")
    salt = os.urandom(SALT_BYTES)
    digest = _scrypt(password, salt, log2_n, R, P)
    return f"{SCHEME}$ln={log2_n},r={R},p={P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Constant time in the password; False for a malformed stored hash (and logs it)."""
    parsed = _parse(stored)
    if parsed is None:
        log.warning("unusable password hash in the IAM store; login refused")
        return False
    candidate = _scrypt(password, parsed.salt, parsed.log2_n, parsed.r, parsed.p)
    return hmac.compare_digest(candidate, parsed.digest)


def dummy_hash(log2_n: int) -> str:
    """A hash no password matches, verified for unknown users so that they cost the same time."""
    return hash_password(base64.b64encode(os.urandom(24)).decode(), log2_n=log2_n)


def _scrypt(password: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    n = 1 << log2_n
    # OpenSSL needs 128 * r * (N + p + 2) bytes; hashlib's default cap is 32 MiB.
    maxmem = _memory(log2_n, r, p) + 1024 * 1024
    return hashlib.scrypt(
        password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=HASH_BYTES
    )


def _memory(log2_n: int, r: int, p: int) -> int:
    return 128 * r * ((1 << log2_n) + p + 2)


def _parse(stored: str) -> _Parsed | None:
    match = _FORMAT.fullmatch(stored)
    if match is None:
        return None
    log2_n, r, p = (int(g) for g in match.group(1, 2, 3))
    if not (MIN_LOG2_N <= log2_n <= MAX_LOG2_N and r >= 1 and p >= 1):
        return None
    if _memory(log2_n, r, p) > MAX_MEMORY:
        return None
    try:
        salt = base64.b64decode(match.group(4), validate=True)
        digest = base64.b64decode(match.group(5), validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(digest) != HASH_BYTES or not salt:
        return None
    return _Parsed(log2_n, r, p, salt, digest)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
