"""The node reader's authenticator, built from its settings."""

from __future__ import annotations

import httpx

from app.authn import Authenticator, JwtAuthenticator
from app.core.config import NodeSettings


def build_authenticator(settings: NodeSettings, client: httpx.AsyncClient) -> Authenticator:
    """Tokens verified with the configured PEM key or JWKS, addressed to this reader
    (`settings.audience`); only `allowed_uids` may read."""
    allowed = set(settings.allowed_uids) or None
    audience = settings.audience
    if settings.public_key is not None:
        return JwtAuthenticator.from_pem_file(
            settings.public_key, allowed_uids=allowed, audience=audience
        )
    if settings.jwks_url is not None:
        return JwtAuthenticator.from_jwks_url(
            settings.jwks_url, client=client, allowed_uids=allowed, audience=audience
        )
    raise ValueError("authentication needs a public key or a JWKS URL")
