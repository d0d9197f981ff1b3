"""The direct path of a shared follow (issue 17): the share's pump writes an event to each
follower through the server's own `send`, without waking a task per follower.

Measured with 10,000 followers of one share, delivering one event cost the gateway ~50 us of
CPU per follower, most of it not the socket write: the follower's task woke, and its message
went down the whole middleware chain (every layer's `send` wrapper) to the server. The
middleware only looks at a response's start and end (status, open-stream registration), so a
follower sends those through the chain and its body chunks through the server's `send`,
kept in the scope by the application's outermost callable (`keep_server_send`).

The server's `send` (uvicorn's) returns at once unless the client's socket buffer is full,
when it waits for it to drain. `send_now` runs it to that point on the caller's stack: done,
or a `Pending` send its follower's task finishes (`Pending.finish`), the pump moving on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from types import CoroutineType
from typing import Any

from starlette.types import Message, Scope, Send

SERVER_SEND = "logway.server_send"


def keep_server_send(scope: Scope, send: Send) -> None:
    """At the application's outermost call: remember the server's `send` in the scope."""
    if scope["type"] == "http":
        scope[SERVER_SEND] = send


def server_send(scope: Scope) -> Send | None:
    send: Send | None = scope.get(SERVER_SEND)
    return send


class Pending:
    """A send that had to wait (the client's socket buffer full): its coroutine and what it
    waits on."""

    def __init__(self, coro: Coroutine[Any, Any, None], waiting: object) -> None:
        self._coro = coro
        self._waiting = waiting

    async def finish(self) -> None:
        """Runs the send to its end in the calling task; cancelled, it is closed."""
        coro, waiting = self._coro, self._waiting
        try:
            while True:
                if isinstance(waiting, asyncio.Future):
                    # Taken over as a task takes what its coroutine yields: the flag the
                    # yield set would make our own `await` refuse the future.
                    waiting._asyncio_future_blocking = False
                    await waiting
                else:  # a bare yield: let the loop turn once
                    await asyncio.sleep(0)
                try:
                    waiting = coro.send(None)
                except StopIteration:
                    return
        except BaseException:
            coro.close()
            raise


def send_now(send: Send, message: Message) -> Pending | None:
    """Sends `message` as far as it goes without waiting: None when sent, else the `Pending`
    rest. What the send raises, this raises."""
    coro = send(message)
    # The exact type first: the ABC's isinstance costs a few µs on every event.
    if not isinstance(coro, CoroutineType | Coroutine):  # pragma: no cover
        raise TypeError("the server's send is not a coroutine function")
    try:
        waiting = coro.send(None)
    except StopIteration:
        return None
    return Pending(coro, waiting)


__all__ = ["SERVER_SEND", "Pending", "keep_server_send", "send_now", "server_send"]
