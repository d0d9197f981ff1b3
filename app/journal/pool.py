"""Journal handles reused across requests, and the thread they are used on.

Opening a journal costs ~0.75 ms against ~0.03 ms to seek and read ten entries on an open
handle (ARCHITECTURE §4), so small range reads borrow a handle from a pool.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from collections.abc import Callable
from typing import TypeVar

from app.journal.handle import Handle, JournalLocation

T = TypeVar("T")

MAX_IDLE_HANDLES = 8
# Each open handle maps journal files; a burst of followers catching up at once must not
# open hundreds. Further readers wait for a handle.
MAX_LEASED_HANDLES = 64


class HandlePool:
    def __init__(
        self,
        location: JournalLocation,
        executor: concurrent.futures.ThreadPoolExecutor,
        *,
        max_idle: int = MAX_IDLE_HANDLES,
        max_leased: int = MAX_LEASED_HANDLES,
    ) -> None:
        self.location = location
        self.executor = executor
        self._idle: list[Handle] = []
        self._max_idle = max_idle
        self.open_handles = 0
        self._closed = False
        self._slots = asyncio.Semaphore(max_leased)

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """Run a blocking call on the journal thread pool, never on the event loop."""
        future = self.executor.submit(functools.partial(fn, *args))
        return await asyncio.wrap_future(future)

    async def lease(self) -> Lease:
        await self._slots.acquire()
        try:
            handle = self._idle.pop() if self._idle else None
            if handle is None:
                handle = await self.run(self.location.open)
                self.open_handles += 1
            else:
                # Files journald added (rotation) or removed since the handle was last used.
                await self.run(handle.process)
        except BaseException:
            self._slots.release()
            raise
        return Lease(self, handle)

    def give_back(self, handle: Handle) -> None:
        self._slots.release()
        if not self._closed and len(self._idle) < self._max_idle:
            self._idle.append(handle)
        else:
            handle.close()
            self.open_handles -= 1

    def _discard(self, handle: Handle) -> None:
        self._slots.release()
        handle.close()
        self.open_handles -= 1

    def close(self) -> None:
        self._closed = True
        while self._idle:
            self._idle.pop().close()
            self.open_handles -= 1


class Lease:
    """A handle borrowed from the pool; calls on it run in the pool's threads.

    If the task using it is cancelled mid-call, the handle goes back only once the
    thread is done with it.
    """

    def __init__(self, pool: HandlePool, handle: Handle) -> None:
        self._pool = pool
        self.handle = handle
        self._inflight: concurrent.futures.Future[object] | None = None
        self._released = False

    def submit(self, fn: Callable[..., T], *args: object) -> concurrent.futures.Future[T]:
        """Start a call on the handle without waiting (one at a time per handle)."""
        if self._released:
            raise RuntimeError("lease already released")
        future = self._pool.executor.submit(functools.partial(fn, *args))
        self._inflight = future  # type: ignore[assignment]
        return future

    async def call(self, fn: Callable[..., T], *args: object) -> T:
        return await asyncio.wrap_future(self.submit(fn, *args))

    def release(self, *, broken: bool = False) -> None:
        if self._released:
            return
        self._released = True
        pool, handle = self._pool, self.handle
        giveback = pool._discard if broken else pool.give_back
        inflight = self._inflight
        if inflight is None or inflight.done():
            giveback(handle)
            return
        loop = asyncio.get_running_loop()
        inflight.add_done_callback(lambda _: loop.call_soon_threadsafe(giveback, handle))
