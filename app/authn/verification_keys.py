"""Verification keys: a PEM file or a JWKS document, parsed once into `kid -> RS256Key`.

python-jose ignores `kid` and, given a key set, tries every key (J6, J17). Here `kid` is only
ever a key into an in-memory dict: never a path, URL or query.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey, RSAPublicNumbers
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from app.authn.errors import KeyLoadError, Reason, TokenRejected
from app.authn.verify import ALGORITHM, MAX_KID_LENGTH, RS256Key

log = logging.getLogger(__name__)

# A JWKS holds a handful of keys; a big one is a misconfiguration or an attack (J17).
MAX_JWKS_KEYS = 100
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth"})


class KeySource(Protocol):
    async def key_for(self, kid: str | None) -> RS256Key:
        """The key for a token's `kid`; raises `TokenRejected` when there is none."""
        ...


class KeySet:
    """An immutable `kid -> key` map. A PEM key loaded without a kid is stored under `None`."""

    def __init__(self, keys: Mapping[str | None, RS256Key]) -> None:
        if not keys:
            raise KeyLoadError("no usable RS256 key")
        if None in keys and len(keys) > 1:
            raise KeyLoadError("a key without kid must be the only key")
        self._keys = dict(keys)

    @classmethod
    def from_pem(cls, pem: bytes, *, kid: str | None = None) -> KeySet:
        try:
            public_key = load_pem_public_key(pem)
        except ValueError as exc:
            raise KeyLoadError(f"not a PEM public key: {exc}") from None
        if not isinstance(public_key, RSAPublicKey):
            raise KeyLoadError("not an RSA public key")
        return cls({kid: RS256Key(public_key)})

    @classmethod
    def from_pem_file(cls, path: str | Path, *, kid: str | None = None) -> KeySet:
        return cls.from_pem(Path(path).read_bytes(), kid=kid)

    @classmethod
    def from_jwks(cls, document: object) -> KeySet:
        """Parse an RFC 7517 key set; unusable entries are logged and skipped (J22)."""
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise KeyLoadError("not a JWKS document")
        entries: list[object] = document["keys"]
        if len(entries) > MAX_JWKS_KEYS:
            raise KeyLoadError(f"JWKS has {len(entries)} keys (limit {MAX_JWKS_KEYS})")
        keys: dict[str | None, RS256Key] = {}
        ambiguous: set[str] = set()
        for index, entry in enumerate(entries):
            try:
                kid, key = _jwk(entry)
            except KeyLoadError as exc:
                log.warning("JWKS key #%d skipped: %s", index, exc)
                continue
            if kid in keys:
                ambiguous.add(kid)
            keys[kid] = key
        for kid in ambiguous:
            log.warning("JWKS kid %r skipped: published more than once", kid)
            del keys[kid]
        return cls(keys)

    def select(self, kid: str | None) -> RS256Key | None:
        if kid is not None and kid in self._keys:
            return self._keys[kid]
        # One key and nothing to choose between: a kid-less token uses it, and so does any
        # token when that key has no kid of its own (a PEM file, as Adminrouter used).
        if len(self._keys) == 1 and (kid is None or None in self._keys):
            return next(iter(self._keys.values()))
        return None

    def __len__(self) -> int:
        return len(self._keys)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KeySet) and other._keys == self._keys

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"KeySet(kids={sorted(map(str, self._keys))})"


class StaticKeys:
    """A `KeySource` over a fixed key set (PEM file, JWKS file)."""

    def __init__(self, keys: KeySet) -> None:
        self.keys = keys

    async def key_for(self, kid: str | None) -> RS256Key:
        return select_or_reject(self.keys, kid)


def select_or_reject(keys: KeySet, kid: str | None) -> RS256Key:
    key = keys.select(kid)
    if key is None:
        raise TokenRejected(Reason.UNKNOWN_KID if kid is not None else Reason.KID_REQUIRED)
    return key


def _jwk(entry: object) -> tuple[str, RS256Key]:
    if not isinstance(entry, dict):
        raise KeyLoadError("not a JSON object")
    if entry.get("kty") != "RSA":
        raise KeyLoadError("kty is not RSA")
    kid = entry.get("kid")
    if not isinstance(kid, str) or not 0 < len(kid) <= MAX_KID_LENGTH:
        raise KeyLoadError("missing or malformed kid")
    if entry.get("use", "sig") != "sig":
        raise KeyLoadError(f"kid {kid!r}: use is not sig")
    if entry.get("alg", ALGORITHM) != ALGORITHM:
        raise KeyLoadError(f"kid {kid!r}: alg is not {ALGORITHM}")
    if not _PRIVATE_MEMBERS.isdisjoint(entry):
        raise KeyLoadError(f"kid {kid!r}: private key material published")
    try:
        numbers = RSAPublicNumbers(e=_b64uint(entry.get("e")), n=_b64uint(entry.get("n")))
        public_key = numbers.public_key()
    except ValueError as exc:
        raise KeyLoadError(f"kid {kid!r}: bad modulus or exponent: {exc}") from None
    try:
        return kid, RS256Key(public_key)
    except KeyLoadError as exc:
        raise KeyLoadError(f"kid {kid!r}: {exc}") from None


def _b64uint(value: object) -> int:
    if not isinstance(value, str) or not value:
        raise ValueError("not a base64url string")
    try:
        data = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except binascii.Error:
        raise ValueError("not a base64url string") from None
    return int.from_bytes(data, "big")
