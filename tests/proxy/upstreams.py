"""Upstreams with a script, served for real by uvicorn: a reflector in Admin Router's test
harness style (it answers with what it received), and an event stream that breaks mid-event."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import anyio
from starlette.types import Receive, Scope, Send

# Headers the reflector always answers with: some must reach the client, some must not.
REFLECTOR_HEADERS = [
    (b"x-accel-buffering", b"TEST"),  # AR case 12
    (b"x-journal-skip-next", b"3"),
    (b"cache-control", b"no-cache"),
    (b"access-control-allow-origin", b"*"),
    (b"set-cookie", b"node-session=secret"),
    (b"x-node-internal", b"10.0.0.7"),
    (b"keep-alive", b"timeout=5"),
    (b"connection", b"x-hop"),
    (b"x-hop", b"dropped because Connection names it"),
]


async def _body(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@dataclass
class Reflector:
    """Answers every request with JSON {method, path, query, headers, http_version}; a few
    paths under `/system/v1/logs/` answer otherwise: `status/<code>`, `redirect/<where>`,
    `truncated` (a body cut short)."""

    requests: list[dict[str, object]] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        raw_path: bytes = scope["raw_path"]
        seen = {
            "method": scope["method"],
            "path": raw_path.decode("latin-1"),
            "query": scope["query_string"].decode("latin-1"),
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
            "http_version": scope["http_version"],
        }
        self.requests.append(seen)
        if raw_path == b"/system/v1/logs/status/204":
            await _body(send, 204, REFLECTOR_HEADERS, b"")
        elif raw_path == b"/system/v1/logs/status/401":
            await _body(send, 401, [(b"www-authenticate", b"acsjwt")], b"no\n")
        elif raw_path == b"/system/v1/logs/truncated":
            start = {"type": "http.response.start", "status": 200}
            await send({**start, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"partial\n", "more_body": True})
            # No final chunk: uvicorn drops the connection.
        elif raw_path.startswith(b"/system/v1/logs/redirect/"):
            location = {
                b"inside": b"/system/v1/logs/elsewhere",
                b"outside": b"http://127.0.0.2:61001/system/v1/logs/",
                b"protocol-relative": b"//10.0.0.7/system/v1/logs/",
            }[raw_path.rsplit(b"/", 1)[1]]
            await _body(send, 307, [(b"location", location)], b"")
        else:
            body = json.dumps(seen).encode()
            headers = [(b"content-type", b"application/json"), *REFLECTOR_HEADERS]
            await _body(send, 200, headers, body)


def event(n: int) -> bytes:
    return b'id: %d\ndata: {"n": %d}\n\n' % (n, n)


@dataclass
class TornStream:
    """An event stream that breaks in the middle of an event.

    The first request gets events 1-2, half of event 3 and a dropped connection; a request with
    `Last-Event-ID: <n>` gets events n+1 up to `last`, then the stream idles until the client
    leaves. With `resume_status`, resumes are answered with that status instead."""

    last: int = 5
    resume_status: int | None = None
    last_event_ids: list[str | None] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = dict(scope["headers"])
        last_id = headers.get(b"last-event-id")
        self.last_event_ids.append(last_id.decode() if last_id is not None else None)
        if last_id is not None and self.resume_status is not None:
            await _body(send, self.resume_status, [(b"content-type", b"text/plain")], b"no\n")
            return
        start = {"type": "http.response.start", "status": 200}
        await send({**start, "headers": [(b"content-type", b"text/event-stream")]})
        if last_id is None:
            await send({"type": "http.response.body", "body": event(1), "more_body": True})
            half = event(2) + event(3)[:-5]  # cut inside the data line
            await send({"type": "http.response.body", "body": half, "more_body": True})
            return  # without the final chunk: uvicorn drops the connection
        for n in range(int(last_id) + 1, self.last + 1):
            await send({"type": "http.response.body", "body": event(n), "more_body": True})
        while (await receive())["type"] != "http.disconnect":
            pass


@dataclass
class Firehose:
    """An endless body, as fast as the reader takes it, until the reader leaves; counts the
    streams still open (uvicorn drops sends after a disconnect silently, so it watches)."""

    open_streams: int = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        start = {"type": "http.response.start", "status": 200}
        await send({**start, "headers": [(b"content-type", b"text/plain")]})
        self.open_streams += 1
        try:
            async with anyio.create_task_group() as tasks:

                async def until_disconnect() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    tasks.cancel_scope.cancel()

                tasks.start_soon(until_disconnect)
                chunk = (b"x" * 1023 + b"\n") * 64
                while True:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    await anyio.sleep(0)  # after a disconnect, send() returns without yielding
        finally:
            self.open_streams -= 1
