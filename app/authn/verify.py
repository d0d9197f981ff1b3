"""RS256 JWT verification: the only module that imports python-jose.

python-jose 3.5.0 is the client's choice, used here for one thing: the RS256 signature check
against a key object we built ourselves. Everything the library gets wrong or leaves out is done
in this module, before or after that call (reference/security.md §1-§2):

* size (J17), shape and strict base64url are checked before anything is decoded; exactly three
  segments, so JWE (five) and stray dots are refused (J5, J16);
* the protected header may hold only `alg`, `typ` and `kid` (J26: kills `crit`, `jku`, `x5u`,
  `jwk`, `x5c`, `zip`, `b64`; J7, J15) and `alg` must be RS256 (J1-J4, J23);
* the key is chosen by `kid` in our code (`verification_keys.py`) and passed as one pre-built
  key object, with an explicit `algorithms=["RS256"]` (J4, J6);
* claims are validated here, not by `jose.jwt`, whose checks accept a missing `exp` (J8), a
  numeric-string or float `exp` (J9) and a future `iat` (J11).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any

import jose.backends
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from jose import jws
from jose.backends.cryptography_backend import CryptographyECKey, CryptographyRSAKey
from jose.exceptions import JOSEError

from app.authn.errors import KeyLoadError, Reason, TokenRejected

ALGORITHM = "RS256"
# DC/OS tokens are ~300 bytes; 8 KiB leaves room and bounds every decode below (J17).
MAX_TOKEN_LENGTH = 8 * 1024
ALLOWED_HEADER_MEMBERS = frozenset({"alg", "typ", "kid"})
MAX_KID_LENGTH = 256
MAX_UID_LENGTH = 256
MAX_AUDIENCE_LENGTH = 256
# RFC 7518 §3.3: "A key of size 2048 bits or larger MUST be used" (J22).
MIN_RSA_BITS = 2048
# Clock skew we tolerate on exp, nbf and iat (J12); config may lower it, never raise it.
DEFAULT_LEEWAY = 30
MAX_LEEWAY = 60
# 9999-12-31T23:59:59Z: bounds NumericDates so 1e30-style "never expires" values are refused (J9).
MAX_NUMERIC_DATE = 253_402_300_799

_COMPACT_JWS = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)")


def require_cryptography_backend() -> None:
    """Refuse to run on python-jose's silent pure-Python fallback (security.md §2)."""
    if (
        jose.backends.RSAKey is not CryptographyRSAKey
        or jose.backends.ECKey is not CryptographyECKey
    ):
        raise RuntimeError(
            "python-jose is not using the cryptography backend; "
            "install python-jose[cryptography] (pure-Python rsa/ecdsa backends are refused)"
        )


class RS256Key:
    """A public RSA key, size-checked and pre-built for python-jose once, at load time."""

    __slots__ = ("_jose_key", "numbers")

    def __init__(self, public_key: RSAPublicKey) -> None:
        require_cryptography_backend()
        if not isinstance(public_key, RSAPublicKey):
            raise KeyLoadError("not an RSA public key")
        if public_key.key_size < MIN_RSA_BITS:
            raise KeyLoadError(
                f"RSA key of {public_key.key_size} bits refused (minimum {MIN_RSA_BITS})"
            )
        self.numbers = public_key.public_numbers()
        # Bound to RS256 here, whatever a token's header says (J23).
        self._jose_key = CryptographyRSAKey(public_key, ALGORITHM)

    @property
    def bits(self) -> int:
        return self.numbers.n.bit_length()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RS256Key) and other.numbers == self.numbers

    def __hash__(self) -> int:
        return hash(self.numbers)

    def __repr__(self) -> str:
        return f"RS256Key(bits={self.bits})"


@dataclass(frozen=True, slots=True)
class UnverifiedToken:
    """A token that passed the pre-checks; only `parse` makes one, only `verify` trusts it."""

    compact: str = field(repr=False)
    kid: str | None


@dataclass(frozen=True, slots=True)
class Claims:
    uid: str
    exp: int
    iat: int | None = None
    nbf: int | None = None
    # Whom the token is addressed to (app/core/audience.py); None for a caller's own token.
    aud: str | None = None


def parse(token: str) -> UnverifiedToken:
    """Pre-checks that need no key: size first, then shape, then the protected header."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenRejected(Reason.TOO_LARGE)
    match = _COMPACT_JWS.fullmatch(token)
    if match is None:
        raise TokenRejected(Reason.MALFORMED)
    header_b64, payload_b64, signature_b64 = match.groups()
    header = _json_object(_b64decode(header_b64), not_an_object=Reason.MALFORMED)
    # Decoded only to refuse non-canonical encodings; jose decodes them again.
    _b64decode(payload_b64)
    _b64decode(signature_b64)

    if not header.keys() <= ALLOWED_HEADER_MEMBERS:
        raise TokenRejected(Reason.HEADER_MEMBER)
    if header.get("alg") != ALGORITHM:
        raise TokenRejected(Reason.ALGORITHM)
    typ = header.get("typ", "JWT")
    if not isinstance(typ, str) or typ.upper() != "JWT":
        raise TokenRejected(Reason.TYP)
    kid = header.get("kid")
    if "kid" in header and (not isinstance(kid, str) or not 0 < len(kid) <= MAX_KID_LENGTH):
        raise TokenRejected(Reason.KID)
    return UnverifiedToken(compact=token, kid=kid)


def verify(token: UnverifiedToken, key: RS256Key, *, now: float, leeway: int) -> Claims:
    """Check the signature with `key`, then the claims at time `now` (seconds since the epoch)."""
    try:
        payload = jws.verify(token.compact, key._jose_key, algorithms=[ALGORITHM])
    except JOSEError:
        raise TokenRejected(Reason.SIGNATURE) from None
    return _claims(_json_object(payload, not_an_object=Reason.CLAIMS), now=now, leeway=leeway)


def _claims(claims: dict[str, Any], *, now: float, leeway: int) -> Claims:
    uid = claims.get("uid")
    if (
        not isinstance(uid, str)
        or not 0 < len(uid) <= MAX_UID_LENGTH
        or not uid.isprintable()  # refuses CR, LF, NUL, other controls and bidi overrides
    ):
        raise TokenRejected(Reason.UID)
    # Required: DC/OS IAM tokens always carry exp (reference/dcos-logs-api.md §5). Adminrouter
    # made it optional "for forever tokens"; we do not accept tokens that never expire (J8).
    if "exp" not in claims:
        raise TokenRejected(Reason.EXP_MISSING)
    exp = _numeric_date(claims["exp"])
    nbf = _numeric_date(claims["nbf"]) if "nbf" in claims else None
    iat = _numeric_date(claims["iat"]) if "iat" in claims else None
    if now >= exp + leeway:
        raise TokenRejected(Reason.EXPIRED)
    if nbf is not None and nbf > now + leeway:
        raise TokenRejected(Reason.NOT_YET_VALID)
    if iat is not None and iat > now + leeway:
        raise TokenRejected(Reason.ISSUED_IN_FUTURE)
    aud = claims.get("aud")
    if aud is not None and (
        not isinstance(aud, str) or not 0 < len(aud) <= MAX_AUDIENCE_LENGTH or not aud.isprintable()
    ):
        raise TokenRejected(Reason.AUDIENCE)
    return Claims(uid=uid, exp=exp, iat=iat, nbf=nbf, aud=aud)


def _numeric_date(value: object) -> int:
    # JSON integers only: "9999999999", 1.5, true and 1e30 are all refused (J9).
    if type(value) is not int or not 0 <= value <= MAX_NUMERIC_DATE:
        raise TokenRejected(Reason.TIME_CLAIM)
    return value


def _b64decode(segment: str) -> bytes:
    try:
        data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise TokenRejected(Reason.MALFORMED) from None
    # Unused trailing bits give one value several spellings; accept only the canonical one.
    if base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii") != segment:
        raise TokenRejected(Reason.MALFORMED)
    return data


def _json_object(data: bytes, *, not_an_object: Reason) -> dict[str, Any]:
    try:
        value = json.loads(
            data.decode("utf-8"),
            object_pairs_hook=_refuse_duplicates,
            parse_constant=_refuse_constant,
        )
    except (ValueError, RecursionError):
        raise TokenRejected(Reason.MALFORMED) from None
    if not isinstance(value, dict):
        raise TokenRejected(not_an_object)
    return value


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate member")
    return obj


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
