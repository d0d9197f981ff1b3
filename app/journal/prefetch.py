"""Read ahead on a journal handle without holding a thread while the client is slow.

A range read is CPU-bound on the journal thread (libsystemd + JSON) and I/O-bound on the
event loop (socket writes). Running batch N+1 .. N+depth while batch N is being sent lets
the two overlap. The producer runs on the pool's threads only while there is room; when
`depth` batches are waiting it returns its thread, and the consumer restarts it.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from app.journal.pool import Lease

T = TypeVar("T")
READ_AHEAD = 3


class Prefetch(Generic[T]):
    def __init__(
        self,
        lease: Lease,
        step: Callable[[], T],
        is_last: Callable[[T], bool],
        *,
        depth: int = READ_AHEAD,
    ) -> None:
        self._lease = lease
        self._step = step
        self._is_last = is_last
        self._depth = depth
        self._lock = threading.Lock()
        self._ready: deque[T | BaseException] = deque()
        self._running = False
        self._finished = False  # the producer produced its last item
        self._closed = False
        self._loop = asyncio.get_running_loop()
        self._wakeup = asyncio.Event()

    def close(self) -> None:
        with self._lock:
            self._closed = True

    def _produce(self) -> None:
        while True:
            with self._lock:
                if self._closed or len(self._ready) >= self._depth:
                    self._running = False
                    return
            item: T | BaseException
            try:
                result = self._step()
                item, last = result, self._is_last(result)
            except BaseException as exc:
                item, last = exc, True
            with self._lock:
                self._ready.append(item)
                if last:
                    self._finished = True
                    self._running = False
            self._loop.call_soon_threadsafe(self._wakeup.set)
            if last:
                return

    def _kick(self) -> None:
        with self._lock:
            if self._running or self._finished or self._closed:
                return
            self._running = True
        self._lease.submit(self._produce)

    async def get(self) -> T:
        while True:
            with self._lock:
                item = self._ready.popleft() if self._ready else None
            if item is not None:
                self._kick()
                if isinstance(item, BaseException):
                    raise item
                return item
            self._wakeup.clear()
            with self._lock:
                empty = not self._ready
            if empty:
                self._kick()
                await self._wakeup.wait()
