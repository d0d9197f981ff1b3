"""The one place RS256 `{uid, exp}` tokens are signed, beside `app.authn.verify` that checks them.

A service login token (reference §5) is such a token signed with the service account's own
key and good for one exchange; the CLI's `logway login --service-account`, the gateway's login
at a remote IAM and the dev cluster's accounts all make theirs here. The IAM's auth tokens are
signed here too, naming their key by `kid` (app.iam.tokens).
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from jose import jws
from jose.backends.cryptography_backend import CryptographyRSAKey

from app.authn.verify import ALGORITHM, MIN_RSA_BITS

# As the dcos CLI's service login tokens (reference §5): only good for this one exchange.
LOGIN_TOKEN_LIFETIME = 300


class TokenSigner:
    """An RSA private key (of a service account, the dev cluster's or the IAM's), checked once;
    with `kid`, the tokens' header names it."""

    def __init__(self, key: PrivateKeyTypes, *, source: str, kid: str | None = None) -> None:
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{source}: not an RSA private key (service login is RS256)")
        if key.key_size < MIN_RSA_BITS:
            raise ValueError(f"{source}: RSA key of {key.key_size} bits (minimum {MIN_RSA_BITS})")
        self._signer = CryptographyRSAKey(key, ALGORITHM)
        self._headers = {"kid": kid} if kid is not None else None

    @classmethod
    def from_pem(cls, pem: bytes, *, source: str) -> TokenSigner:
        try:
            key = load_pem_private_key(pem, password=None)
        except (ValueError, TypeError) as exc:
            # Never the parser's text: it might quote the file.
            raise ValueError(f"{source}: not an unencrypted PEM private key") from exc
        return cls(key, source=source)

    @classmethod
    def from_file(cls, path: Path) -> TokenSigner:
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise ValueError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
        return cls.from_pem(pem, source=str(path))

    def token(
        self, uid: str, *, exp: int, iat: int | None = None, audience: str | None = None
    ) -> str:
        """Header {alg: RS256, typ: JWT} (and kid); claims {uid, exp} (and iat, aud when
        given). jose adds the `typ`."""
        claims: dict[str, object] = {"uid": uid, "exp": exp}
        if iat is not None:
            claims["iat"] = iat
        if audience is not None:
            claims["aud"] = audience
        signed: str = jws.sign(claims, self._signer, headers=self._headers, algorithm=ALGORITHM)
        return signed

    def login_token(self, uid: str, *, now: float, audience: str | None = None) -> str:
        """A service login token for `uid`, good for `LOGIN_TOKEN_LIFETIME` seconds; naming
        `audience`, a Logway IAM answers a token addressed to it alone (issue 12 §2)."""
        return self.token(uid, exp=int(now) + LOGIN_TOKEN_LIFETIME, audience=audience)
