"""`logway logs` over HTTP: which gateway and token, a range read (NDJSON), and a follow
(server-sent events) that survives network errors.

A follow resumes where it stopped: after a refused or reset connection, a read error or
timeout, or a stream the gateway ended, it reconnects with `Last-Event-ID` set to the id of
the last whole event it printed (the node reader resumes right after that entry), waiting a
little longer each time up to `BACKOFF_MAX`, for as long as the user wants lines. It gives
up only when the gateway answers with an error that waiting cannot fix: any status but
502/503/504 (the gateway up, the node not), e.g. a 401 once the token has expired, or when the
gateway ends the stream because the caller's access ended (its last event, `access-ended`,
names why: `token expired`, `access revoked`): exit 3 with that reason.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import httpx
import orjson

from app.authz.access import ACCESS_ENDED_EVENT
from app.cli.credentials import Credentials
from app.cli.http import EXIT_DENIED, EXIT_ERROR, EXIT_USAGE, CliError
from app.cli.logs_output import BadEntry
from app.cli.logs_source import JSON, SSE, Request, Source, Window
from app.proxy.sse import SseParser

CONNECT_TIMEOUT = 10.0
# The node reader sends an SSE ping after 15 s without entries; four missed pings mean the
# connection is dead even if no error says so (a silently dropped peer, a stuck proxy).
READ_TIMEOUT = 60.0
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 10.0
# After a follow has started, these mean "the gateway cannot reach the node right now".
RETRY_STATUSES = frozenset({502, 503, 504})
MAX_ERROR_CHARS = 2000
MAX_EVENT_BYTES = 16 * 1024 * 1024  # far above a journal entry (journald caps one at 768 MiB,
# but the node reader's lines are task lines and unit messages)

Note = Callable[[str], None]
Sleep = Callable[[float], None]


@dataclass(frozen=True)
class Target:
    """The gateway and the token to send it."""

    url: str
    token: str | None

    @classmethod
    def resolve(cls, url: str | None, env: Mapping[str, str], stored: Credentials | None) -> Target:
        """`--url`, else `LOGWAY_URL`, else the stored login's; the token from `LOGWAY_TOKEN`,
        else the stored login's, which goes only to the URL it was issued by."""
        base = (url or env.get("LOGWAY_URL") or (stored.url if stored else "")).rstrip("/")
        if not base:
            raise CliError(
                "no gateway URL: pass --url, set LOGWAY_URL or run `logway login --url URL`",
                EXIT_USAGE,
            )
        if not base.startswith(("http://", "https://")):
            raise CliError(f"gateway URL {base!r}: expected http://… or https://…", EXIT_USAGE)
        token = env.get("LOGWAY_TOKEN") or None
        if token is None and stored is not None and stored.url.rstrip("/") == base:
            token = stored.token
        return cls(base, token)

    def client(self) -> httpx.Client:
        headers = {"Authorization": f"token={self.token}"} if self.token else {}
        timeout = httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT)
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)


def check(response: httpx.Response) -> None:
    """A 2xx passes; anything else is a `CliError` carrying the gateway's own message."""
    status = response.status_code
    if status < 300:
        return
    response.read()
    message = response.text.strip()[:MAX_ERROR_CHARS] or response.reason_phrase
    if status == 400:
        # Options the gateway refused (a filter contradicting the route, say): bad usage.
        raise CliError(f"bad request (400): {message}", EXIT_USAGE)
    if status == 401:
        sent = "authorization" in response.request.headers
        hint = "" if sent else " (no token: set LOGWAY_TOKEN or run `logway login`)"
        raise CliError(f"not authenticated (401): {message}{hint}", EXIT_DENIED)
    if status == 403:
        raise CliError(f"denied (403): {message}", EXIT_DENIED)
    if status == 404:
        raise CliError(f"not found (404): {message}")
    if status == 409:
        # "found more than 1 task matching `q`: id, id and N more": one candidate a line.
        head, sep, listed = message.partition(": ")
        candidates = "".join(f"\n  {c}" for c in listed.split(", ")) if sep else ""
        raise CliError(f"{head if sep else message} (409); name one by its id:{candidates}")
    raise CliError(f"the gateway answered {status}: {message}")


def _get(client: httpx.Client, request: Request, headers: Mapping[str, str]) -> httpx.Response:
    return client.send(
        client.build_request("GET", request.path, params=request.params, headers=headers),
        stream=True,
    )


def ndjson(chunks: Iterator[bytes]) -> Iterator[list[bytes]]:
    """The complete lines of each chunk (a line may span chunks)."""
    pending = b""
    for chunk in chunks:
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        if complete := [line for line in lines if line.strip()]:
            yield complete
    if pending.strip():
        yield [pending]


def read_range(
    client: httpx.Client, request: Request, entries: Callable[[list[bytes]], None]
) -> None:
    response = _get(client, request, {"Accept": JSON})
    try:
        check(response)
        if response.status_code == 204:  # nothing in the window
            return
        for batch in ndjson(response.iter_bytes()):
            entries(batch)
    finally:
        response.close()


def read_count(client: httpx.Client, request: Request) -> int:
    """`{"entries": N}` from a count route."""
    response = _get(client, request, {"Accept": JSON})
    try:
        check(response)
        body = orjson.loads(response.read())
    finally:
        response.close()
    n = body.get("entries") if isinstance(body, dict) else None
    if not isinstance(n, int):
        raise CliError(f"unexpected answer from the gateway: {body!r:.80}", EXIT_ERROR)
    return n


def last_cursor(client: httpx.Client, source: Source, window: Window) -> str | None:
    """The cursor of the window's newest entry (None when it has none): where `-n 0
    --follow` starts, so that it prints only what comes after. From an SSE range, the
    event's id if it has one (a merged read's composite cursor), else the entry's own."""
    route = source.route
    newest = route.range(Window(lines=1, since=window.since, filters=window.filters))
    response = _get(client, newest, {"Accept": route.newest_accept})
    try:
        check(response)
        body = response.read()
    finally:
        response.close()
    if response.headers.get("content-type", "").startswith(SSE):
        events = SseParser(max_event_bytes=MAX_EVENT_BYTES).feed(body + b"\n\n")
        if events and events[-1].id:
            return events[-1].id
        lines = [event.data for event in events]
    else:
        lines = [line for line in body.split(b"\n") if line.strip()]
    if not lines:
        return None
    try:
        cursor = orjson.loads(lines[-1]).get("cursor")
    except (orjson.JSONDecodeError, AttributeError):
        cursor = None
    if not isinstance(cursor, str):
        raise BadEntry(f"no cursor in the newest entry: {lines[-1][:80]!r}")
    return cursor


def follow(
    client: httpx.Client,
    source: Source,
    window: Window,
    entries: Callable[[list[bytes]], None],
    *,
    note: Note,
    sleep: Sleep = time.sleep,
) -> None:
    """Print the window's entries and every new one, until interrupted (KeyboardInterrupt
    propagates) or an error that reconnecting cannot fix (`CliError`)."""
    request = source.route.stream(window)
    last_id: str | None = None
    delay = BACKOFF_FIRST
    connected = False
    while True:
        headers = {"Accept": SSE, "Cache-Control": "no-cache"}
        if last_id is not None:
            headers["Last-Event-ID"] = last_id
        try:
            response = _get(client, request, headers)
            try:
                if connected and response.status_code in RETRY_STATUSES:
                    response.read()
                    reason = f"the gateway answered {response.status_code}: {response.text.strip()}"
                else:
                    check(response)
                    if connected:
                        note("reconnected")
                    connected = True
                    parser = SseParser(max_event_bytes=MAX_EVENT_BYTES)
                    for chunk in response.iter_bytes():
                        events = parser.feed(chunk)
                        while parser.comments:
                            note(parser.comments.pop(0))
                        ended = next((e for e in events if e.type == ACCESS_ENDED_EVENT), None)
                        if ended is not None:
                            events = events[: events.index(ended)]
                        if events:
                            entries([event.data for event in events])
                            delay = BACKOFF_FIRST  # the connection was worth having
                        last_id = parser.last_id or last_id
                        if ended is not None:
                            why = ended.data.decode("utf-8", "replace")[:MAX_ERROR_CHARS]
                            raise CliError(f"the gateway ended the stream: {why}", EXIT_DENIED)
                    reason = "the gateway ended the stream"
            finally:
                response.close()
        except httpx.TransportError as exc:
            if not connected:
                raise
            reason = describe(exc)
        note(f"{reason}; reconnecting in {delay:g} s")
        sleep(delay)
        delay = min(delay * 2, BACKOFF_MAX)


def describe(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return f"cannot connect ({exc or 'timed out'})"
    if isinstance(exc, httpx.TimeoutException):
        return f"no data for {READ_TIMEOUT:g} s"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the connection closed mid-response"
    return f"connection lost ({exc or type(exc).__name__})"
