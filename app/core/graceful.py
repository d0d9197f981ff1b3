"""Streams end cleanly when the server stops (issue 12 §6).

uvicorn, on SIGTERM, stops accepting, waits `timeout_graceful_shutdown` for open connections,
then cancels what is left: a follow never ends by itself, so every client saw a cut chunked body
and the log a traceback per stream. Here every streaming response registers while its body is
open; the server's exit handler (`GracefulServer`) cancels them all at once, and each ends with
a last SSE comment naming the shutdown (event streams) and a proper end of body. The client
keeps the last event id it received and resumes with it on another replica.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from types import FrameType

import anyio
import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

SHUTDOWN_COMMENT = b": shutdown: this server is stopping; resume with the last event id\n\n"


class OpenStreams:
    """The streaming responses whose body is still open, to end them at shutdown."""

    def __init__(self) -> None:
        self._scopes: set[anyio.CancelScope] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closing = False

    def add(self, scope: anyio.CancelScope) -> None:
        self._loop = asyncio.get_running_loop()
        self._scopes.add(scope)

    def discard(self, scope: anyio.CancelScope) -> None:
        self._scopes.discard(scope)

    def __len__(self) -> int:
        return len(self._scopes)

    def __contains__(self, scope: anyio.CancelScope) -> bool:
        return scope in self._scopes

    def close_all(self) -> None:
        """On the event loop: end every open stream (and any that opens from now on)."""
        self.closing = True
        for scope in list(self._scopes):
            scope.cancel()

    def close_all_threadsafe(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.close_all)


class GracefulStreams:
    """ASGI middleware: a response that has started a body still to come is registered in
    `streams` until it ends; `streams.close_all()` ends it with `SHUTDOWN_COMMENT` (event
    streams) and a final empty body message."""

    def __init__(self, app: ASGIApp, *, streams: OpenStreams) -> None:
        self.app = app
        self.streams = streams

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cancel = anyio.CancelScope()
        started = ended = sse = False
        streams = self.streams

        async def watched(message: Message) -> None:
            nonlocal started, ended, sse
            if message["type"] == "http.response.start":
                started = True
                for name, value in message.get("headers", ()):
                    if name.lower() == b"content-type":
                        sse = value.startswith(b"text/event-stream")
            elif message["type"] == "http.response.body":
                if not message.get("more_body", False):
                    ended = True
                    streams.discard(cancel)
                elif cancel not in streams:
                    if streams.closing:
                        cancel.cancel()
                    streams.add(cancel)
            await send(message)

        try:
            with cancel:
                await self.app(scope, receive, watched)
        finally:
            streams.discard(cancel)
        if cancel.cancel_called and started and not ended:
            with anyio.move_on_after(1.0):  # a client that reads nothing cannot hold the exit
                if sse:
                    await send(
                        {"type": "http.response.body", "body": SHUTDOWN_COMMENT, "more_body": True}
                    )
                await send({"type": "http.response.body", "body": b"", "more_body": False})


class GracefulServer(uvicorn.Server):
    """`uvicorn.Server` that ends open streams as soon as it is told to exit."""

    def __init__(
        self,
        config: uvicorn.Config,
        streams: OpenStreams,
        *,
        on_started: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(config)
        self._streams = streams
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started and self._on_started is not None:
            self._on_started()  # serving: a worker's parent may start the next

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._streams.close_all_threadsafe()
        super().handle_exit(sig, frame)
