"""A remote DC/OS-style IAM decides: `GET /acs/api/v1/internal/policyquery`.

Admin Router's EE authorizer, made safe (reference/dcos-logs-api.md §4.2, security.md §6):

* the query is built by httpx from `params`, never concatenated, so a uid with `&` or a rid
  with `?` reaches IAM as one intact value;
* the request carries only the gateway's own service token (`Authorization: token=...`, read
  from a provider on every query so it can be refreshed), never a caller's header or cookie:
  it is built from scratch, not from the shared client's defaults or cookie jar;
* anything but a 200 with a JSON object holding a boolean `allowed` is `Unavailable` (503):
  unreachable, timeout, redirect, 5xx, oversized or garbage body. It never allows;
* decisions (allow and deny) are cached per (uid, rid, action) for a short TTL, so a revoke
  takes at most `ttl` seconds to bite. Failures are not cached.

IAM is the authority on rids here: they are sent as given, malformed or not.
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable

import httpx

from app.authz.audit import audit
from app.authz.model import Action, Decision
from app.core.credential import TokenProvider, current_token
from app.core.errors import Unavailable
from app.core.http import ServiceCallFailed, call_service

log = logging.getLogger(__name__)

POLICY_QUERY_PATH = "/acs/api/v1/internal/policyquery"
DEFAULT_TTL = 5.0
DEFAULT_TIMEOUT = 5.0
DEFAULT_MAX_ENTRIES = 10_000
MAX_RESPONSE_BYTES = 64 * 1024

REASON = "IAM PQ response"
REASON_CACHED = "IAM PQ response (cached)"


class _QueryFailed(Exception):
    pass


class RemoteIamAuthorizer:
    """`Authorizer` backed by IAM's policy query. `client` is the caller's to close."""

    def __init__(
        self,
        iam_url: str,
        *,
        client: httpx.AsyncClient,
        service_token: TokenProvider,
        ttl: float = DEFAULT_TTL,
        timeout: float = DEFAULT_TIMEOUT,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        base = httpx.URL(iam_url)
        if base.scheme not in ("http", "https") or not base.host:
            raise ValueError("IAM URL must be an http(s) URL with a host")
        if base.query or base.fragment:
            raise ValueError("IAM URL must not carry a query or fragment")
        if ttl < 0 or timeout <= 0 or max_entries < 1:
            raise ValueError("need ttl >= 0, timeout > 0 and max_entries >= 1")
        self.url = base.copy_with(path=base.path.rstrip("/") + POLICY_QUERY_PATH)
        self._client = client
        self._token = service_token
        self._ttl = ttl
        self._timeout = httpx.Timeout(timeout)
        self._max_entries = max_entries
        self._clock = clock
        self._cache: OrderedDict[tuple[str, str, Action], tuple[Decision, float]] = OrderedDict()

    async def authorize(self, uid: str, rid: str, action: Action) -> Decision:
        key = (uid, rid, action)
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and now < cached[1]:
            audit(uid, rid, action, cached[0], REASON_CACHED)
            return cached[0]
        try:
            allowed = await self._query(uid, rid, action)
        except _QueryFailed as exc:
            log.warning(
                "IAM policy query to %s failed for uid=%r rid=%r action=%s: %s",
                self.url,
                uid,
                rid,
                action.value,
                exc,
            )
            raise Unavailable(f"IAM policy query failed: {exc}") from None
        decision = Decision.ALLOW if allowed else Decision.DENY
        if self._ttl > 0:
            self._remember(key, decision, self._clock() + self._ttl)
        audit(uid, rid, action, decision, REASON)
        return decision

    async def _query(self, uid: str, rid: str, action: Action) -> bool:
        token = await self._service_token()
        request = httpx.Request(
            "GET",
            self.url,
            params={"rid": rid, "uid": uid, "action": action.value},
            headers={"Accept": "application/json", "Authorization": f"token={token}"},
            extensions={"timeout": self._timeout.as_dict()},
        )
        try:
            answer = await call_service(
                self._client, request, limit=MAX_RESPONSE_BYTES, service="IAM"
            )
        except ServiceCallFailed as exc:
            raise _QueryFailed(exc.message) from None
        return _allowed(answer.body)

    async def _service_token(self) -> str:
        try:
            token = await current_token(self._token)
        except Exception as exc:
            # The provider's own message might quote a credential; its type is enough here.
            raise _QueryFailed(f"no service token ({type(exc).__name__})") from None
        if not isinstance(token, str) or not token:
            raise _QueryFailed("no service token")
        return token

    def _remember(self, key: tuple[str, str, Action], decision: Decision, until: float) -> None:
        # One TTL for all, so insertion order is expiry order: the front holds the stale ones.
        cache = self._cache
        cache.pop(key, None)
        now = self._clock()
        while cache and (len(cache) >= self._max_entries or next(iter(cache.values()))[1] <= now):
            cache.popitem(last=False)
        cache[key] = (decision, until)


def _allowed(body: bytes) -> bool:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise _QueryFailed("response is not JSON") from None
    allowed = document.get("allowed") if isinstance(document, dict) else None
    if not isinstance(allowed, bool):
        raise _QueryFailed("response has no boolean 'allowed'")
    return allowed
