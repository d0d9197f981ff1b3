"""Keys and token builders for the authn tests: real RSA keys, tokens signed by python-jose,
plus a raw builder for the malformed and hostile ones python-jose would refuse to produce."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from jose import jws
from jose.backends.cryptography_backend import CryptographyRSAKey

# A fixed "now" for tests that inject a clock (2027-01-15).
NOW = 1_800_000_000


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64json(value: Any) -> str:
    return b64(json.dumps(value).encode())


def uint_b64(value: int) -> str:
    return b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass(frozen=True)
class Signer:
    """A private key that mints tokens, and its public halves in every format a verifier sees."""

    private_key: rsa.RSAPrivateKey
    kid: str

    @classmethod
    def generate(cls, kid: str, bits: int = 2048) -> Signer:
        return cls(rsa.generate_private_key(public_exponent=65537, key_size=bits), kid)

    @property
    def private_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def public_pem(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def public_der(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def jwk(self, **extra: Any) -> dict[str, Any]:
        numbers = self.private_key.public_key().public_numbers()
        jwk = {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid}
        jwk |= {"n": uint_b64(numbers.n), "e": uint_b64(numbers.e)}
        return jwk | extra

    def token(
        self,
        claims: dict[str, Any] | None = None,
        *,
        kid: str | None = "",
        headers: dict[str, Any] | None = None,
    ) -> str:
        """A python-jose RS256 token; `kid=""` means this signer's kid, `None` means none."""
        header = dict(headers or {})
        if kid is not None:
            header["kid"] = kid or self.kid
        payload = {"uid": "alice", "exp": NOW + 3600} if claims is None else claims
        key = CryptographyRSAKey(self.private_key, "RS256")
        return jws.sign(payload, key, headers=header, algorithm="RS256")

    def rs256(self, signing_input: bytes) -> bytes:
        return self.private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())


def raw_token(
    header: dict[str, Any] | bytes,
    payload: dict[str, Any] | bytes,
    *,
    signer: Signer | None = None,
    hmac_secret: bytes | None = None,
    signature: bytes | None = None,
) -> str:
    """Build a compact JWS byte by byte: any header, any payload, RS256/HS256/no signature."""
    head = b64(header) if isinstance(header, bytes) else b64json(header)
    body = b64(payload) if isinstance(payload, bytes) else b64json(payload)
    signing_input = f"{head}.{body}".encode()
    if signer is not None:
        signature = signer.rs256(signing_input)
    elif hmac_secret is not None:
        signature = hmac.new(hmac_secret, signing_input, hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature or b'')}"


def split(token: str) -> list[str]:
    return token.split(".")
