"""The gateway's own credential as the clients that send it see it: a callable returning the
current token, asked once per request so that its owner can renew it (a service login, a key
rotation) without the callers knowing how. It may be a coroutine function."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

TokenProvider = Callable[[], str | Awaitable[str]]


async def current_token(provider: TokenProvider) -> str:
    """The provider's token now; its exceptions propagate."""
    provided = provider()
    return await provided if inspect.isawaitable(provided) else provided


# The gateway's credential for one node reader, given that reader's audience
# (app/core/audience.py, from the address dialled): its owner mints, caches and renews one per
# node without the proxy knowing how (issue 12 §2).
NodeTokenProvider = Callable[[str], Awaitable[str]]
