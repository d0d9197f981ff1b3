"""Private signing keys encrypted at rest: the database holds only `seal(pem)`.

AES-256-GCM under a key derived (HKDF-SHA256) from the operator's key-encryption secret
(`LOGWAY_IAM_KEY_ENCRYPTION_KEY_FILE` or `LOGWAY_IAM_KEY_ENCRYPTION_KEY`), with the kid as
associated data, so a sealed key cannot be swapped under another kid's row. A database dump
alone signs nothing.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MIN_SECRET_BYTES = 32
PREFIX = "v1:"
_INFO = b"logway iam signing keys v1"


class SealError(RuntimeError):
    """A sealed key could not be opened (wrong secret, or tampered with)."""


class Sealer:
    def __init__(self, secret: bytes) -> None:
        secret = secret.strip()
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(
                f"the key-encryption secret must be at least {MIN_SECRET_BYTES} bytes"
                " (e.g. `openssl rand -base64 48`)"
            )
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret)
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, *, kid: str) -> str:
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, plaintext, kid.encode())
        return PREFIX + base64.b64encode(nonce + sealed).decode("ascii")

    def open(self, sealed: str, *, kid: str) -> bytes:
        if not sealed.startswith(PREFIX):
            raise SealError(f"signing key {kid}: not a sealed key")
        try:
            raw = base64.b64decode(sealed[len(PREFIX) :], validate=True)
            return self._aead.decrypt(raw[:12], raw[12:], kid.encode())
        except (InvalidTag, ValueError):
            raise SealError(
                f"signing key {kid}: cannot decrypt it (another key-encryption secret?)"
            ) from None
