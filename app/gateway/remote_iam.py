"""Remote-IAM mode (`iam_url` set): gateway replicas on any number of hosts share one IAM over
HTTP, as DC/OS's Admin Routers share the IAM (reference §4, §5), and keep no state themselves:

* a caller's token is verified by the IAM's JWKS (`/acs/api/v1/auth/jwks`), and its uid must
  exist there (`RemoteUidDirectory`, `GET /acs/api/v1/users/<uid>`), the answer reused until
  `signal` moves (once per `iam_cache_ttl`);
* every decision is the IAM's policy query (`RemoteIamAuthorizer`: an IAM that fails to answer
  means 503, never allow), reused for `iam_cache_ttl` seconds;
* the gateway's own token (to node readers, Mesos and the policy query) comes from a service
  login with `service_private_key` (`RemoteServiceToken`);
* `/acs/api/v1/*` is forwarded to the IAM (`IamForwarder`), so clients log in at the gateway;
* `/readyz` also needs the IAM's JWKS to answer.

The IAM may be another `logway gateway` in embedded mode or the DC/OS IAM. The one HTTP client
is built here, with the rest, and closed by the app's lifespan (`async with remote:`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from types import TracebackType

from fastapi import APIRouter

from app.authn import JwksSource, JwtAuthenticator
from app.authn.known import KnownUids
from app.authn.remote_uids import RemoteUidDirectory
from app.authn.sign import TokenSigner
from app.authz import RemoteIamAuthorizer
from app.authz.access import TtlSignal
from app.core.audience import MESOS
from app.core.config import GatewaySettings
from app.gateway.iam_forward import IamForwarder, iam_forward_router
from app.gateway.node_credentials import PerAudience
from app.gateway.service_login import RemoteServiceToken
from app.iam.client import JWKS_PATH
from app.proxy import new_upstream_client

log = logging.getLogger(__name__)

# /readyz answers anyone: at most one JWKS fetch per this many seconds, whatever the probing.
READY_PROBE_INTERVAL = 2.0
URL_SETTING = "LOGWAY_GATEWAY_IAM_URL"
KEY_SETTING = "LOGWAY_GATEWAY_SERVICE_PRIVATE_KEY"


class RemoteIam:
    def __init__(self, settings: GatewaySettings, key: TokenSigner) -> None:
        assert settings.iam_url is not None
        self.url = settings.iam_url
        self._uid, self._key = settings.service_uid, key
        self.client = new_upstream_client()
        self.jwks = JwksSource(self.url + JWKS_PATH, client=self.client)
        # Verifies signatures and claims (the service token's too); `authenticator` also asks
        # the IAM whether the uid exists.
        self.verifier = JwtAuthenticator(self.jwks)
        self.service_token = RemoteServiceToken(
            self.url, settings.service_uid, key, client=self.client, verifier=self.verifier
        )
        # No change signal from a remote IAM: its answers are cached for `iam_cache_ttl`, so
        # they may have changed each time that much time has passed (uids and decisions alike).
        self.signal = TtlSignal(settings.iam_cache_ttl or settings.stream_access_period)
        self.authenticator = KnownUids(
            self.verifier,
            RemoteUidDirectory(
                self.url,
                client=self.client,
                service_token=self.service_token,
                generation=self.signal.generation,
            ),
        )
        # Towards Mesos and each node reader: tokens addressed to them (issue 12 §2).
        self.mesos_token = self.addressed_token(MESOS)
        self.node_tokens = PerAudience(self.addressed_token)
        self.authorizer = RemoteIamAuthorizer(
            self.url,
            client=self.client,
            service_token=self.service_token,
            ttl=settings.iam_cache_ttl,
        )
        self.forwarder = IamForwarder(self.url, self.client)
        self._probe_lock = asyncio.Lock()
        self._probed_at = -math.inf
        self._jwks_answered = False

    def addressed_token(self, audience: str) -> RemoteServiceToken:
        return RemoteServiceToken(
            self.url,
            self._uid,
            self._key,
            client=self.client,
            verifier=self.verifier,
            audience=audience,
        )

    @classmethod
    def from_settings(cls, settings: GatewaySettings) -> RemoteIam | None:
        """The remote IAM `settings` name, or None for the embedded IAM. Raises ValueError,
        naming the variable, on a setting that cannot work."""
        key_path = settings.service_private_key
        if settings.iam_url is None:
            if key_path is not None:
                raise ValueError(f"{KEY_SETTING} is only used with {URL_SETTING} (a remote IAM)")
            return None
        if key_path is None:
            raise ValueError(
                f"{URL_SETTING} needs {KEY_SETTING}: the PEM private key of the service account "
                f"{settings.service_uid!r} (LOGWAY_GATEWAY_SERVICE_UID) registered at that IAM"
            )
        try:
            key = TokenSigner.from_file(key_path)
        except ValueError as exc:
            raise ValueError(f"{KEY_SETTING}: {exc}") from None
        if key_path.stat().st_mode & 0o077:
            log.warning("%s is readable by group or others: make it mode 0600", key_path)
        return cls(settings, key)

    def router(self) -> APIRouter:
        return iam_forward_router(self.forwarder)

    async def problem(self) -> str | None:
        """What keeps the IAM from serving this gateway (for /readyz); None when it answers."""
        async with self._probe_lock:
            if time.monotonic() - self._probed_at >= READY_PROBE_INTERVAL:
                self._jwks_answered = await self.jwks.refresh()
                self._probed_at = time.monotonic()
        return None if self._jwks_answered else "remote IAM unreachable (its JWKS did not answer)"

    async def __aenter__(self) -> RemoteIam:
        # Not fatal: the IAM may come up after the gateway; /readyz says so meanwhile.
        if not await self.jwks.refresh():
            log.warning("the remote IAM at %s does not answer yet", self.url)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.client.aclose()
