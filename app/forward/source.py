"""Reading a source through the gateway: one or more feeds (a follow stream each), every
event put on the pipeline's bounded queue, so a full queue stops the reading.

A feed resumes with `Last-Event-ID` (the node cursor, or a merged stream's composite
cursor) after a network error, a 502/503/504 or a stream the gateway ended, backing off up
to `BACKOFF_MAX`. A 401 gets one renewed login; a 401 or 403 after that ends the pipeline:
the forwarder's access was revoked. The gateway ends a stream whose authorization no longer
holds with a last `access-ended` event: `token expired` reconnects at once (and renews the
login on the 401), `access revoked` ends the pipeline as a 403 does.

`cluster` is every node's journal: each master's that the gateway's Mesos-DNS
`master.mesos` lists (the leader and the masters it polls by IP address), and each agent's
that its `/mesos/master/state-summary` lists, re-read every `DISCOVERY_PERIOD` for new nodes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import quote

import httpx
import orjson

from app.authz.access import TOKEN_EXPIRED
from app.cli.logs_read import MAX_ERROR_CHARS, READ_TIMEOUT, RETRY_STATUSES
from app.cli.logs_source import SSE, Request, Source, V1Route, Window
from app.forward.credential import Credential, LoginRefused
from app.forward.sse import EventSplitter
from app.proxy.sse import SseError

# 429: the gateway's cap on follows per identity (another of ours may end); 502-504: the
# gateway up, the node not.
FOLLOW_RETRY_STATUSES = RETRY_STATUSES | {429}
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 10.0
DISCOVERY_PERIOD = 30.0
CONNECT_TIMEOUT = 10.0
MASTERS_PATH = "/mesos_dns/v1/hosts/master.mesos"

Note = Callable[[str], None]


class AccessDenied(Exception):
    """401/403 from the gateway: the pipeline ends (exit status 3)."""


class SourceFailed(Exception):
    """An answer no retry can change (404, 400): the pipeline ends (exit status 1)."""


@dataclass(frozen=True)
class Chunk:
    """The whole events of one read: (event id, data) each, all from one feed."""

    feed: str
    events: list[tuple[str | None, bytes]]


Put = Callable[[Chunk], Awaitable[None]]


@dataclass(frozen=True)
class Feed:
    key: str  # the position's key: "" for a one-stream source, "master", "agent:<id>"
    request: Request


class Gateway:
    """The gateway client of one pipeline."""

    def __init__(self, url: str, credential: Credential, *, note: Note) -> None:
        self.client = httpx.AsyncClient(
            base_url=url, timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT)
        )
        self.credential = credential
        self.note = note

    async def aclose(self) -> None:
        await self.client.aclose()

    async def _headers(self) -> dict[str, str]:
        try:
            return await self.credential.headers(self.client)
        except LoginRefused as exc:
            raise AccessDenied(str(exc)) from exc

    async def get(self, path: str) -> bytes:
        """The body of a 2xx answer; a 401 renews the login once."""
        for attempt in range(2):
            response = await self.client.get(path, headers=await self._headers())
            renew = response.status_code == 401 and attempt == 0
            if renew and await self.credential.renew(self.client):
                continue
            await _raise_for(response)
            return response.content
        raise AssertionError("unreachable")

    async def get_json(self, path: str) -> object:
        return orjson.loads(await self.get(path))

    async def follow(self, feed: Feed, start: str | None, put: Put) -> None:
        """Put every event of the feed, from just after `start` on, until cancelled."""
        last_id = start
        delay = BACKOFF_FIRST
        renewed = False
        while True:
            headers = {**await self._headers(), "Accept": SSE, "Cache-Control": "no-cache"}
            if last_id is not None:
                headers["Last-Event-ID"] = last_id
            request = self.client.build_request(
                "GET", feed.request.path, params=feed.request.params, headers=headers
            )
            try:
                response = await self.client.send(request, stream=True)
                try:
                    status = response.status_code
                    if status == 401 and not renewed and await self.credential.renew(self.client):
                        renewed = True
                        continue
                    if status in FOLLOW_RETRY_STATUSES:
                        await response.aread()
                        reason = f"the gateway answered {status}: {response.text.strip()}"
                    else:
                        await _raise_for(response)
                        renewed = False
                        parser = EventSplitter()
                        async for data in response.aiter_bytes():
                            events = parser.feed(data)
                            while parser.comments:  # a merged read's "agent … unavailable"
                                self.note(f"{feed.key or 'source'}: {parser.comments.pop(0)}")
                            if events:
                                last_id = events[-1][0] or last_id
                                await put(Chunk(feed.key, events))
                                delay = BACKOFF_FIRST
                        if parser.ended == TOKEN_EXPIRED:
                            delay = BACKOFF_FIRST  # the reconnect's 401 renews the login
                        elif parser.ended is not None:
                            raise AccessDenied(f"the gateway ended the stream: {parser.ended}")
                        reason = "the gateway ended the stream"
                finally:
                    await response.aclose()
            except httpx.TransportError as exc:
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            except SseError as exc:
                reason = f"unexpected answer: {exc}"
            label = feed.key or feed.request.path
            self.note(f"{label}: {reason}; reconnecting in {delay:g} s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    async def cluster_feeds(self, window: Window) -> list[Feed]:
        """Every master's journal and every agent's."""
        masters = await self.get_json(MASTERS_PATH)
        feeds = []
        for record in masters if isinstance(masters, list) else []:
            ip = record.get("ip") if isinstance(record, dict) else None
            if isinstance(ip, str) and ip:
                base = f"/system/v1/master/{quote(ip, safe='')}/logs/v1"
                feeds.append(Feed(f"master:{ip}", V1Route(base).stream(window)))
        if not feeds:
            raise SourceFailed(f"the gateway lists no master at {MASTERS_PATH}")
        summary = await self.get_json("/mesos/master/state-summary")
        agents = summary.get("slaves", []) if isinstance(summary, dict) else []
        for agent in agents:
            agent_id = agent.get("id") if isinstance(agent, dict) else None
            if isinstance(agent_id, str) and agent_id:
                base = f"/system/v1/agent/{quote(agent_id, safe='')}/logs/v1"
                feeds.append(Feed(f"agent:{agent_id}", V1Route(base).stream(window)))
        return feeds


async def _raise_for(response: httpx.Response) -> None:
    status = response.status_code
    if status < 300:
        return
    text = (await response.aread()).decode("utf-8", "replace").strip()[:MAX_ERROR_CHARS]
    if status in (401, 403):
        raise AccessDenied(f"the gateway denied access ({status}): {text}")
    raise SourceFailed(f"the gateway answered {status}: {text}")


def single_feed(source: Source, window: Window) -> Sequence[Feed]:
    return (Feed("", source.route.stream(window)),)
