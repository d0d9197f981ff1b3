"""The shared live tail: one journal handle per node reader follows the journal and fans
new entries out to every follower, each through its own filter.

The handle's file descriptor (inotify, via sd_journal_get_fd) wakes the tail; because
journald posts those notifications only every 250 ms, the tail also looks every 10 ms while
it has followers (and every second otherwise). A follower that falls more than
`queue_limit` entries behind is marked lagged instead of holding memory for it: it catches
up from its own cursor and subscribes again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque

from app.journal.entry import Entry
from app.journal.handle import Handle
from app.journal.pool import HandlePool
from app.journal.query import Query

log = logging.getLogger(__name__)

TAIL_BATCH = 1000
QUEUE_LIMIT = 20_000
# When libsystemd says the fd cannot be trusted (e.g. network file systems), or an
# inotify event is missed, we still look every so often.
SAFETY_POLL_INTERVAL = 1.0
# journald makes new entries visible in the mapped file at once but posts the inotify
# change at most every 250 ms (POST_CHANGE_TIMER_INTERVAL_USEC in journal-file.c), so the
# fd alone cannot deliver a line within 50 ms. While anyone follows, we also look this often
# (a non-blocking process()+next() on the journal thread, ~tens of µs when idle).
FOLLOW_POLL_INTERVAL = 0.01
# How long `close()` waits for the pump to end before cancelling it again.
CLOSE_RETRY = 0.1
# Followers whose matches fix this field (every task's follow) are found by the value an
# entry has, so a batch costs per entry, not per entry and follower (issue 17: thousands of
# task followers on one node).
INDEX_FIELD = "CONTAINER_ID"


class Lagged(Exception):
    """The follower fell too far behind the live tail and must catch up on its own."""


class Subscription:
    def __init__(self, tail: LiveTail, query: Query, start: Entry | None, limit: int) -> None:
        self._tail = tail
        self.query = query
        self.start = start  # entries after this one come through the tail
        self._queue: deque[list[Entry]] = deque()
        self._size = 0
        self._limit = limit
        self._wakeup = asyncio.Event()
        self.lagged = False
        self.key = (query.matches, query.any_of, query.since, query.until)
        self.indexed = query.only_value(INDEX_FIELD)

    def offer(self, entries: list[Entry]) -> None:
        if self.lagged or not entries:
            return
        if self._size + len(entries) > self._limit:
            self.lagged = True
            self._queue.clear()
            self._size = 0
        else:
            self._queue.append(entries)
            self._size += len(entries)
        self._wakeup.set()

    async def get(self, idle: float | None) -> list[Entry]:
        """The next entries, or [] when `idle` seconds pass with none."""
        if not self._queue and not self.lagged:
            self._wakeup.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), idle)
        if self.lagged:
            raise Lagged
        if not self._queue:
            return []
        entries = self._queue.popleft()
        self._size -= len(entries)
        return entries

    def close(self) -> None:
        self._tail._remove(self)


class LiveTail:
    def __init__(self, pool: HandlePool, *, queue_limit: int = QUEUE_LIMIT) -> None:
        self._pool = pool
        self._queue_limit = queue_limit
        self._subscriptions: set[Subscription] = set()
        self._unindexed: set[Subscription] = set()
        self._index: dict[bytes, set[Subscription]] = {}
        self._handle: Handle | None = None
        self._last: Entry | None = None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._fd: int | None = None

    @property
    def followers(self) -> int:
        return len(self._subscriptions)

    async def start(self) -> None:
        handle = await self._pool.run(self._pool.location.open)
        self._handle = handle
        self._last = await self._pool.run(self._open_at_tail, handle)
        self._fd = await self._pool.run(handle.fileno)
        asyncio.get_running_loop().add_reader(self._fd, self._on_readable)
        self._task = asyncio.create_task(self._run(), name="journal-live-tail")

    @staticmethod
    def _open_at_tail(handle: Handle) -> Entry | None:
        handle.position(Query(skip_prev=1))
        batch = handle.read_forward(1)
        return batch[-1] if batch else None

    async def close(self) -> None:
        if self._fd is not None:
            asyncio.get_running_loop().remove_reader(self._fd)
            self._fd = None
        if self._task is not None:
            # Python 3.11's wait_for can swallow a cancellation that arrives as the wait
            # ends (gh-86296), and the pump then loops on: cancel until it is done.
            while not self._task.done():
                self._task.cancel()
                await asyncio.wait((self._task,), timeout=CLOSE_RETRY)
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def subscribe(self, query: Query) -> Subscription:
        sub = Subscription(self, query, self._last, self._queue_limit)
        self._subscriptions.add(sub)
        if sub.indexed is None:
            self._unindexed.add(sub)
        else:
            self._index.setdefault(sub.indexed, set()).add(sub)
        self._wake.set()  # switch from the idle to the follow poll interval now
        return sub

    def _remove(self, sub: Subscription) -> None:
        self._subscriptions.discard(sub)
        if sub.indexed is None:
            self._unindexed.discard(sub)
            return
        subs = self._index.get(sub.indexed)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._index[sub.indexed]

    def _on_readable(self) -> None:
        # Level-triggered: stop watching until the pump has called process().
        if self._fd is not None:
            asyncio.get_running_loop().remove_reader(self._fd)
        self._wake.set()

    async def _run(self) -> None:
        assert self._handle is not None
        handle = self._handle
        loop = asyncio.get_running_loop()
        while True:
            interval = FOLLOW_POLL_INTERVAL if self._subscriptions else SAFETY_POLL_INTERVAL
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)
            self._wake.clear()
            try:
                while True:
                    batch = await self._pool.run(self._read_new, handle)
                    if self._fd is not None:
                        loop.add_reader(self._fd, self._on_readable)
                    if not batch:
                        break
                    self._dispatch(batch)
            except Exception:
                log.exception("live tail read failed; retrying")

    @staticmethod
    def _read_new(handle: Handle) -> list[Entry]:
        handle.process()
        return handle.read_forward(TAIL_BATCH)

    def _dispatch(self, batch: list[Entry]) -> None:
        self._last = batch[-1]
        _offer(self._unindexed, batch)
        if not self._index:
            return
        by_value: dict[bytes, list[Entry]] = {}
        for entry in batch:
            value = entry.field_bytes(INDEX_FIELD)
            if value is not None and value in self._index:
                by_value.setdefault(value, []).append(entry)
        for value, entries in by_value.items():
            _offer(tuple(self._index[value]), entries)


def _offer(subs: set[Subscription] | tuple[Subscription, ...], batch: list[Entry]) -> None:
    """Each follower gets the entries its filter lets through (computed once per filter)."""
    by_filter: dict[object, list[Entry]] = {}
    for sub in tuple(subs):
        matched = by_filter.get(sub.key)
        if matched is None:
            matched = [e for e in batch if sub.query.matches_entry(e)]
            by_filter[sub.key] = matched
        sub.offer(matched)
