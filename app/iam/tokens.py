"""Tokens: the IAM's RS256 auth tokens (`{uid, exp, iat}`), the key source that verifies them,
and the check of a service account's login token.

Auth tokens are verified by app.authn (`JwtAuthenticator` over `IamKeys`, a `KeySource` built
with `KeySet.from_jwks` from the IAM's own JWKS and rebuilt when the key ring changes), so the
IAM and the gateway accept exactly what any other JWKS client of this IAM would.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from app.authn import Claims, KeySet, Reason, StaticKeys, TokenRejected
from app.authn.sign import TokenSigner
from app.authn.verify import RS256Key, parse, verify
from app.iam.signing import SigningKeys


@dataclass(frozen=True, slots=True)
class IssuedToken:
    uid: str
    exp: int
    token: str = field(repr=False)


class TokenIssuer:
    def __init__(
        self, keys: SigningKeys, *, lifetime: int, clock: Callable[[], float] = time.time
    ) -> None:
        self._keys = keys
        self.lifetime = lifetime
        self._clock = clock
        self._signers: dict[str, TokenSigner] = {}

    @property
    def current_kid(self) -> str:
        """The key the next token is signed with."""
        return self._keys.current.kid

    def issue(
        self, uid: str, *, audience: str | None = None, lifetime: int | None = None
    ) -> IssuedToken:
        """A token for `uid`; with `audience`, addressed to it alone (app/core/audience.py)."""
        key = self._keys.current
        signer = self._signers.get(key.kid)
        if signer is None:
            signer = TokenSigner(key.private_key, source=f"signing key {key.kid}", kid=key.kid)
            self._signers[key.kid] = signer
        now = int(self._clock())
        exp = now + (self.lifetime if lifetime is None else lifetime)
        token = signer.token(uid, exp=exp, iat=now, audience=audience)
        return IssuedToken(uid=uid, exp=exp, token=token)


class IamKeys:
    """The `KeySource` of the IAM's own tokens: the published keys of the key ring."""

    def __init__(self, keys: SigningKeys) -> None:
        self._ring = keys
        self._kids: tuple[str, ...] = ()
        self._keys: StaticKeys | None = None

    async def key_for(self, kid: str | None) -> RS256Key:
        # An unknown kid may be a key another worker has just rotated in: look at once.
        await self._ring.refresh(force=kid is not None and kid not in self.kids())
        return await self._current().key_for(kid)

    def kids(self) -> tuple[str, ...]:
        return tuple(key.kid for key in self._ring.published())

    def _current(self) -> StaticKeys:
        kids = self.kids()
        if self._keys is None or kids != self._kids:
            self._keys = StaticKeys(KeySet.from_jwks(self._ring.jwks()))
            self._kids = kids
        return self._keys


def verify_service_login(
    token: str,
    public_key: RS256Key,
    *,
    iam_kids: Collection[str],
    now: float,
    leeway: int,
) -> Claims:
    """A service login token: RS256 `{uid, exp}` signed with the account's own key.

    Refused (`TokenRejected`) when malformed, wrongly signed, expired, without `exp`, or
    dated in the future beyond `leeway` (app.authn.verify), and when it names one of the
    IAM's own keys: an auth token is not a login credential (security.md J24).
    """
    unverified = parse(token)
    if unverified.kid is not None and unverified.kid in iam_kids:
        raise TokenRejected(Reason.UNKNOWN_KID)
    return verify(unverified, public_key, now=now, leeway=leeway)


def is_iam_key(key: RS256Key, keys: SigningKeys) -> bool:
    """Whether `key` is one of the IAM's own (refused as a service account key, J24)."""
    return any(k.private_key.public_key().public_numbers() == key.numbers for k in keys.published())


def service_public_key(pem: str) -> RS256Key:
    """The verification key of a service account (raises `KeyLoadError` if unusable)."""
    key = KeySet.from_pem(pem.encode("ascii", errors="replace")).select(None)
    assert key is not None  # a one-key set always selects it
    return key
