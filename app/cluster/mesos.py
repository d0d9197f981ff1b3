"""Find the leading Mesos master and read its `/master/state` (reference §8).

Where the leader is, in the order we ask:

1. the master that answered last time (one request per poll while it leads);
2. each configured master's `/master/redirect`: a 307 to `//<leader host>:<port>`, or 503
   "No leader elected" (then the next master); an unreachable master is skipped, and one
   that answers anything else is asked for its state directly;
3. on the way, a non-leader's 307 from `/master/state` is followed, and a state document from
   a master that does not lead is followed to the leader it names (`leader_info`/`leader`),
   at most `MAX_HOPS` times per attempt.

The answer is parsed and indexed on a worker thread: a large cluster's state is megabytes of
JSON, and the event loop serves log streams meanwhile.

`request_timeout` bounds each exchange with one URL, body included (`call_service`'s
deadline): a master that sends a byte now and then would otherwise hold the refresh, which
every poll and every request that needs one waits on, for ever.
"""

from __future__ import annotations

import asyncio

import httpx

from app.cluster.errors import MesosError
from app.cluster.index import BadState, NotLeader, build_snapshot
from app.cluster.model import ClusterSnapshot
from app.cluster.settings import ClusterSettings
from app.core.credential import current_token
from app.core.http import Answer, ServiceCallFailed, UnexpectedStatus, call_service

STATE_PATH = "/master/state"
REDIRECT_PATH = "/master/redirect"
MAX_HOPS = 3
REDIRECTS = frozenset({301, 302, 303, 307, 308})
MAX_STATE_BYTES = 256 * 1024 * 1024


class _NoLeader(Exception):
    pass


class _Unreachable(MesosError):
    pass


class MesosClient:
    """Reads the leader's state. `client` belongs to the caller, who closes it."""

    def __init__(self, settings: ClusterSettings, client: httpx.AsyncClient) -> None:
        self._settings = settings
        self._client = client
        self._timeout = httpx.Timeout(settings.request_timeout)
        self.leader_url: str | None = None  # base URL of the master that answered last

    async def fetch(self) -> ClusterSnapshot:
        """The leader's state, indexed; `MesosError` listing every failed attempt."""
        failures: list[str] = []
        if self.leader_url is not None:
            try:
                return await self._state_from(self.leader_url)
            except (MesosError, _NoLeader) as exc:
                failures.append(str(exc))
        for master in self._settings.masters:
            try:
                start = await self._leader_via_redirect(master)
            except (_NoLeader, _Unreachable) as exc:
                failures.append(str(exc))
                continue
            except MesosError as exc:
                failures.append(str(exc))
                start = master
            try:
                return await self._state_from(start)
            except (MesosError, _NoLeader) as exc:
                failures.append(str(exc))
        raise MesosError("; ".join(failures))

    async def _leader_via_redirect(self, master: str) -> str:
        url = master + REDIRECT_PATH
        try:
            answer = await self._get(url, expect=REDIRECTS | {503})
        except UnexpectedStatus as exc:
            raise MesosError(f"{url}: {exc}") from None  # a master: ask it for its state
        except ServiceCallFailed as exc:
            raise _Unreachable(f"{url}: {exc}") from None
        if answer.status == 503:
            raise _NoLeader(f"{url}: no leader elected")
        return _redirect_base(url, answer)

    async def _state_from(self, base: str) -> ClusterSnapshot:
        for _ in range(MAX_HOPS):
            url = base + STATE_PATH
            try:
                answer = await self._get(url, expect=REDIRECTS | {200, 503})
            except ServiceCallFailed as exc:
                raise MesosError(f"{url}: {exc}") from None
            if answer.status in REDIRECTS:
                base = _redirect_base(url, answer)
                continue
            if answer.status == 503:
                raise _NoLeader(f"{url}: no leader elected")
            try:
                snapshot = await asyncio.to_thread(
                    build_snapshot,
                    answer.body,
                    reader_scheme=self._settings.reader_scheme,
                    reader_port=self._settings.reader_port,
                    masters=self._settings.master_ips,
                )
            except NotLeader as exc:
                if exc.leader is None:
                    raise _NoLeader(f"{url}: {exc}") from None
                base = _join(url, f"//{_host(exc.leader[0])}:{exc.leader[1]}")
                continue
            except BadState as exc:
                raise MesosError(f"{url}: bad state: {exc}") from None
            self.leader_url = base
            return snapshot
        raise MesosError(f"{base}: more than {MAX_HOPS} redirects looking for the leader")

    async def _get(self, url: str, *, expect: frozenset[int]) -> Answer:
        headers = {"User-Agent": self._settings.user_agent, "Accept": "application/json"}
        if self._settings.service_token is not None:
            headers["Authorization"] = f"token={await self._token()}"
        request = httpx.Request(
            "GET", url, headers=headers, extensions={"timeout": self._timeout.as_dict()}
        )
        return await call_service(
            self._client,
            request,
            limit=MAX_STATE_BYTES,
            service="the master",
            expect=expect,
            deadline=self._settings.request_timeout,
        )

    async def _token(self) -> str:
        provider = self._settings.service_token
        assert provider is not None
        try:
            token = await current_token(provider)
        except Exception as exc:
            # The provider's message might quote a credential; its type is enough.
            raise MesosError(f"no service token ({type(exc).__name__})") from None
        if not isinstance(token, str) or not token:
            raise MesosError("no service token")
        return token


def _redirect_base(url: str, answer: Answer) -> str:
    location = answer.headers.get("Location")
    if not location:
        raise MesosError(f"{url}: HTTP {answer.status} without a Location")
    return _join(url, location)


def _join(current: str, location: str) -> str:
    """Scheme, host and port of `location` (Mesos sends `//host:port[/path]`), resolved
    against the URL we asked; never from https down to http, where our token would leak."""
    try:
        target = httpx.URL(current).join(location)
    except httpx.InvalidURL:
        raise MesosError(f"bad redirect {location!r}") from None
    if target.scheme not in ("http", "https") or not target.host:
        raise MesosError(f"bad redirect {location!r}")
    if current.startswith("https:") and target.scheme != "https":
        raise MesosError(f"refusing a redirect from https to {location!r}")
    port = f":{target.port}" if target.port is not None else ""
    return f"{target.scheme}://{_host(target.host)}{port}"


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
