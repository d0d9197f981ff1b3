"""Build the node reader's authenticator from its settings."""

from __future__ import annotations

from app.core.config import NodeSettings
from app.node.app import RequestAuthenticator


def build_authenticator(settings: NodeSettings) -> RequestAuthenticator | None:
    if settings.no_auth:
        return None
    raise NotImplementedError("token verification is wired in with app.authn")
