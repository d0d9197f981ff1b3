"""Why a token was turned away, kept apart from what the client is told.

The client only ever sees a fixed message (never the token, a claim or a header value, k8s
`TestUnmarshalClaimError`); `reason` is for tests and debug logs and is always one of the fixed
strings below, so it cannot carry attacker-chosen bytes either.
"""

from __future__ import annotations

from enum import StrEnum

from app.core.errors import AuthenticationError

GENERIC_MESSAGE = "Invalid authentication token"


class Reason(StrEnum):
    AUTH_SCHEME = "unsupported Authorization scheme"
    AUTH_HEADER = "malformed Authorization header"
    TOO_LARGE = "token too large"
    MALFORMED = "malformed token"
    HEADER_MEMBER = "protected header member not allowed"
    ALGORITHM = "algorithm not allowed"
    TYP = "token type not allowed"
    KID = "malformed kid"
    KID_REQUIRED = "kid required when several keys are configured"
    UNKNOWN_KID = "unknown kid"
    SIGNATURE = "bad signature"
    CLAIMS = "malformed claims"
    EXP_MISSING = "exp missing"
    TIME_CLAIM = "exp, nbf and iat must be integer NumericDates"
    EXPIRED = "token expired"
    NOT_YET_VALID = "token not yet valid (nbf)"
    ISSUED_IN_FUTURE = "token issued in the future (iat)"
    UID = "uid missing or malformed"
    UID_NOT_ALLOWED = "uid not allowed"
    AUDIENCE = "token addressed to another audience"
    UNKNOWN_UID = "uid unknown to the IAM"


class TokenRejected(AuthenticationError):
    """Credentials were presented and refused (401)."""

    def __init__(self, reason: Reason, message: str = GENERIC_MESSAGE) -> None:
        super().__init__(message)
        self.reason = reason


class KeyLoadError(ValueError):
    """A verification key (PEM, JWK, JWKS document) is unusable or too weak."""
