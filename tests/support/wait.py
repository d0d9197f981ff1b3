"""The tests' one way to wait for something that happens on its own time: poll a check until
it returns something other than None, or fail naming what never happened."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

TIMEOUT = 20.0
STEP = 0.05


def wait_for(
    what: str, check: Callable[[], T | None], *, timeout: float = TIMEOUT, step: float = STEP
) -> T:
    """Poll `check` until it returns something other than None (a predicate: `check() or
    None`)."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found is not None:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(step)


async def wait_for_async(
    what: str, check: Callable[[], T | None], *, timeout: float = TIMEOUT, step: float = STEP
) -> T:
    """`wait_for` inside an event loop: the loop runs while it waits."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found is not None:
            return found
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(step)
