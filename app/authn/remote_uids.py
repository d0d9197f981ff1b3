"""Does a uid exist at a remote IAM? `GET /acs/api/v1/users/<uid>`: 200 yes, 404 no, as
Admin Router 1.9 asked before trusting a token's uid (reference/dcos-logs-api.md §4.1).

The `UidDirectory` of `KnownUids` in remote-IAM mode (issue 12 §5): a validly signed token of a
uid the IAM does not (or no longer) hold is refused on every route. The question goes with the
gateway's own service token, never a caller's; any other answer (unreachable, 401/403, 5xx) is
`Unavailable` (503), never "exists". There is no change signal from a remote IAM:
`generation` is the one the open streams' watcher reads (it moves once per the IAM cache's
TTL), so `KnownUids` drops its answers as often as the policy query's decisions expire.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import quote

import httpx

from app.core.credential import TokenProvider, current_token
from app.core.errors import Unavailable
from app.core.http import ServiceCallFailed, call_service

log = logging.getLogger(__name__)

USERS_PATH = "/acs/api/v1/users/"
DEFAULT_TIMEOUT = 5.0
# A user's record is small; the body is not used, only the status.
MAX_RESPONSE_BYTES = 64 * 1024
OK, NOT_FOUND = 200, 404


class RemoteUidDirectory:
    """`client` is the caller's to close."""

    def __init__(
        self,
        iam_url: str,
        *,
        client: httpx.AsyncClient,
        service_token: TokenProvider,
        generation: Callable[[], int],
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._base = iam_url.rstrip("/")
        self._client = client
        self._token = service_token
        self._generation = generation
        self._timeout = httpx.Timeout(timeout)

    def generation(self) -> int:
        return self._generation()

    async def user_exists(self, uid: str) -> bool:
        try:
            token = await current_token(self._token)
        except Exception as exc:
            # The provider's own message might quote a credential; its type is enough here.
            raise Unavailable(f"IAM uid lookup: no service token ({type(exc).__name__})") from None
        request = httpx.Request(
            "GET",
            # One path segment, whatever the uid holds (`/`, `?`, `..` included).
            self._base + USERS_PATH + quote(uid, safe=""),
            headers={"Accept": "application/json", "Authorization": f"token={token}"},
            extensions={"timeout": self._timeout.as_dict()},
        )
        try:
            answer = await call_service(
                self._client,
                request,
                limit=MAX_RESPONSE_BYTES,
                service="IAM",
                expect=(OK, NOT_FOUND),
            )
        except ServiceCallFailed as exc:
            log.warning("IAM uid lookup at %s failed for uid=%r: %s", self._base, uid, exc)
            raise Unavailable(f"IAM uid lookup failed: {exc}") from None
        return answer.status == OK
