"""Keys from a JWKS URL (the IAM's `/acs/api/v1/auth/jwks`), refreshed without letting tokens
drive the fetching (J19).

* TTL refresh: a stale set is refreshed by one request while the others keep using it.
* An unknown `kid` triggers one refresh, single-flight, at most once per `min_refresh_interval`
  (a flood of random kids costs one fetch per interval); during the cooldown it is rejected.
* A failed fetch (network, non-200, not JSON, too big, no usable key) keeps the last good set.
* Never loaded at all: `Unavailable` (503), since the token may well be good.

The `httpx.AsyncClient` belongs to the caller, who closes it (STYLE §5: built in the lifespan).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable

import httpx

from app.authn.errors import KeyLoadError
from app.authn.verification_keys import KeySet, select_or_reject
from app.authn.verify import RS256Key
from app.core.errors import Unavailable
from app.core.http import ServiceCallFailed, call_service

log = logging.getLogger(__name__)

DEFAULT_TTL = 600.0
MIN_REFRESH_INTERVAL = 30.0
FETCH_TIMEOUT = 5.0
MAX_JWKS_BYTES = 256 * 1024


class _FetchFailed(Exception):
    pass


class JwksSource:
    """A `KeySource` backed by a JWKS URL."""

    def __init__(
        self,
        url: str,
        *,
        client: httpx.AsyncClient,
        ttl: float = DEFAULT_TTL,
        min_refresh_interval: float = MIN_REFRESH_INTERVAL,
        timeout: float = FETCH_TIMEOUT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        parsed = httpx.URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ValueError("JWKS URL must be an http(s) URL with a host")
        if min_refresh_interval <= 0 or ttl < min_refresh_interval:
            raise ValueError("need 0 < min_refresh_interval <= ttl")
        self.url = parsed
        self._client = client
        self._ttl = ttl
        self._min_interval = min_refresh_interval
        self._timeout = timeout
        self._clock = clock
        self._lock = asyncio.Lock()
        self._keys: KeySet | None = None
        self._loaded_at = -math.inf
        self._last_attempt = -math.inf

    @property
    def keys(self) -> KeySet | None:
        return self._keys

    async def key_for(self, kid: str | None) -> RS256Key:
        stale = self._clock() - self._loaded_at >= self._ttl
        # With no keys every request waits for the fetch; with stale keys only the first does.
        if self._keys is None or (stale and not self._lock.locked()):
            await self._refresh_rate_limited()
        keys = self._keys
        if keys is None:
            raise Unavailable("Authentication keys are unavailable")
        if keys.select(kid) is None:
            await self._refresh_rate_limited()
            keys = self._keys if self._keys is not None else keys
        return select_or_reject(keys, kid)

    async def refresh(self) -> bool:
        """Fetch now, ignoring the cooldown (for start-up); False if the fetch failed."""
        async with self._lock:
            return await self._fetch_and_swap()

    async def _refresh_rate_limited(self) -> None:
        async with self._lock:
            # Whoever waited on the lock behind a fetch finds it done here and does not repeat it.
            if self._clock() - self._last_attempt < self._min_interval:
                return
            await self._fetch_and_swap()

    async def _fetch_and_swap(self) -> bool:
        self._last_attempt = self._clock()
        try:
            keys = KeySet.from_jwks(await self._fetch())
        except (ServiceCallFailed, _FetchFailed, KeyLoadError) as exc:
            kept = "keeping the last good key set" if self._keys else "no keys loaded"
            log.warning("JWKS fetch from %s failed (%s): %s", self.url, exc, kept)
            return False
        if keys != self._keys:
            log.info("JWKS from %s loaded: %d key(s)", self.url, len(keys))
        self._keys = keys
        self._loaded_at = self._clock()
        return True

    async def _fetch(self) -> object:
        request = self._client.build_request(
            "GET", self.url, headers={"Accept": "application/json"}, timeout=self._timeout
        )
        answer = await call_service(self._client, request, limit=MAX_JWKS_BYTES, service="the JWKS")
        try:
            return json.loads(answer.body)
        except (ValueError, RecursionError):
            raise _FetchFailed("response is not JSON") from None
