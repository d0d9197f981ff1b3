"""Authentication: token extraction, hardened RS256 verification, JWKS keys -> `Identity`."""

from app.authn.authenticator import Authenticator, Identity, JwtAuthenticator, NoAuth
from app.authn.dependency import require_identity
from app.authn.errors import KeyLoadError, Reason, TokenRejected
from app.authn.jwks import JwksSource
from app.authn.verification_keys import KeySet, KeySource, StaticKeys
from app.authn.verify import Claims

__all__ = [
    "Authenticator",
    "Claims",
    "Identity",
    "JwksSource",
    "JwtAuthenticator",
    "KeyLoadError",
    "KeySet",
    "KeySource",
    "NoAuth",
    "Reason",
    "StaticKeys",
    "TokenRejected",
    "require_identity",
]
