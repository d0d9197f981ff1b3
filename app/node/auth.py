"""The node reader's authenticator, built from its settings."""

from __future__ import annotations

import httpx

from app.authn import Authenticator, JwtAuthenticator
from app.core.config import NodeSettings


def build_authenticator(settings: NodeSettings, client: httpx.AsyncClient) -> Authenticator:
    """Tokens verified with the configured PEM key or JWKS; only `allowed_uids` may read."""
    allowed = set(settings.allowed_uids) or None
    if settings.public_key is not None:
        return JwtAuthenticator.from_pem_file(settings.public_key, allowed_uids=allowed)
    if settings.jwks_url is not None:
        return JwtAuthenticator.from_jwks_url(
            settings.jwks_url, client=client, allowed_uids=allowed
        )
    raise ValueError("authentication needs a public key or a JWKS URL")
