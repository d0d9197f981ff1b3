"""An RSA signing key pair on disk for tests of the node reader's auth, and tokens signed with it.

Stands in for the IAM's signing key until the embedded IAM exists; the private key file
is mode 0600.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.authn.sign import TokenSigner

TOKEN_LIFETIME = 5 * 24 * 3600  # DC/OS IAM's default: five days
KEY_BITS = 2048


@dataclass(frozen=True)
class DevKeys:
    private_path: Path
    public_path: Path

    @classmethod
    def create(cls, directory: Path) -> DevKeys:
        directory.mkdir(parents=True, exist_ok=True)
        keys = cls(directory / "signing-key.pem", directory / "signing-key.pub.pem")
        if not keys.private_path.exists():
            key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            fd = os.open(keys.private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
            keys.public_path.write_bytes(
                key.public_key().public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            )
        return keys

    def token(
        self, uid: str, *, lifetime: int = TOKEN_LIFETIME, audience: str | None = None
    ) -> str:
        now = int(time.time())
        signer = TokenSigner.from_file(self.private_path)
        return signer.token(uid, exp=now + lifetime, iat=now, audience=audience)
