"""`Journal`: the node reader's JournalSource. Range reads on pooled handles; follows that
catch up on their own handle and then join the shared live tail with no gap and no
duplicate.

The join point is the tail's last dispatched entry at subscription time (`sub.start`): the
catch-up read delivers entries up to and including it, the tail everything after.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from app.journal.cursor import seqnum_of
from app.journal.encoders import Encoder, NativeFormat, native_format
from app.journal.entry import Entry
from app.journal.handle import Handle, JournalLocation, Skipped
from app.journal.index import Bounds, MessageIndex, entries_in, indexable, journal_files
from app.journal.pool import HandlePool, Lease
from app.journal.prefetch import Prefetch
from app.journal.query import Query
from app.journal.search import MAX_PRIME, Selector, primed_enough
from app.journal.tail import Lagged, LiveTail, Subscription

READ_BATCH = 500
# A range read in C (no search) encodes this many entries per step on the journal thread.
NATIVE_BATCH = 2000
# A search without context looks at this many entries per step on the journal thread
# (decoding only the matches); the client's departure is noticed between steps.
SCAN_BATCH = 5000
JOURNAL_THREADS = 8
HEARTBEAT_INTERVAL = 15.0


@dataclass(frozen=True, slots=True)
class JournalSettings:
    read_batch: int = READ_BATCH
    threads: int = JOURNAL_THREADS
    queue_limit: int = 20_000
    # When a grep= range read goes through journald's index (app/journal/index.py).
    index_bounds: Bounds = field(default_factory=Bounds)


class Journal:
    def __init__(self, location: JournalLocation, settings: JournalSettings | None = None) -> None:
        self.settings = settings or JournalSettings()
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=self.settings.threads, thread_name_prefix="journal"
        )
        self.pool = HandlePool(location, self._executor)
        self.tail = LiveTail(self.pool, queue_limit=self.settings.queue_limit)
        # grep= range reads the index answered ("index") or gave back to the scan (the
        # reason), for /metrics, the bench and the tests.
        self.index_reads: Counter[str] = Counter()

    async def start(self) -> None:
        await self.tail.start()

    async def close(self) -> None:
        await self.tail.close()
        self.pool.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def open(self, query: Query, *, follow: bool = False) -> Reading:
        """Position a read; bad cursors fail here, before any byte is sent."""
        lease = await self.pool.lease()
        try:
            skipped = await lease.call(lease.handle.position, query)
            # A follower must not take from the live tail what lies before its start.
            anchor = await lease.call(lease.handle.anchor) if follow else None
            before: list[Entry] = []
            search = query.search
            if search is not None and search.context:
                # Back until every source seen has all its state there (app/journal/search.py).
                size = search.prime_size
                while True:
                    before = await lease.call(lease.handle.around, size, query.reverse)
                    if len(before) < size or size >= MAX_PRIME:
                        break
                    if primed_enough(before, search.context):
                        break
                    size = min(size * 4, MAX_PRIME)
        except BaseException:
            lease.release()
            raise
        reading = Reading(self, lease, query, skipped, follow=follow, anchor=anchor)
        if reading.selector is not None and before:
            resumed = follow and query.cursor_param == "Last-Event-ID"
            reading.selector.prime([e for e in before if query.in_time_window(e)], resumed=resumed)
        return reading

    async def unique(self, field: str) -> list[str]:
        lease = await self.pool.lease()
        try:
            return await lease.call(_unique, lease.handle, field)
        finally:
            lease.release()


class Reading:
    """One positioned read. Iterate `batches()`; `aclose()` releases everything."""

    def __init__(
        self,
        journal: Journal,
        lease: Lease,
        query: Query,
        skipped: Skipped,
        *,
        follow: bool,
        anchor: Entry | None = None,
    ) -> None:
        self._journal = journal
        self._lease: Lease | None = lease
        self._sub: Subscription | None = None
        self.query = query
        self.skipped = skipped
        self.follow = follow
        # With grep=, the selector counts matches against the limit (and adds context).
        self.selector = Selector(query.search, limit=query.limit) if query.search else None
        self._remaining = query.limit if query.limit and self.selector is None else None
        # The last entry delivered (or, for a follow, the one just before its start): what
        # the live tail offers at or before it is not this reader's.
        self._last: Entry | None = anchor
        # A follow ends here (unix time): the caller's credential expires then (J27).
        self.deadline: float | None = None
        self._scan_end = ""  # a scanning read's last entry looked at ('' at the end)

    async def aclose(self) -> None:
        if self._lease is not None:
            self._lease.release()
            self._lease = None
        if self._sub is not None:
            self._sub.close()
            self._sub = None

    def _take(self, entries: list[Entry]) -> list[Entry]:
        if self.selector is not None:
            # What was looked at, not what was sent, bounds what the live tail may add.
            if entries:
                self._last = entries[-1]
            return self.selector.feed(entries)
        if self._remaining is not None:
            entries = entries[: self._remaining]
            self._remaining -= len(entries)
        if entries:
            self._last = entries[-1]
        return entries

    @property
    def _exhausted(self) -> bool:
        if self.selector is not None:
            return self.selector.done
        return self._remaining is not None and self._remaining <= 0

    @property
    def _scanning(self) -> bool:
        """A search without context: only matches need decoding."""
        search = self.query.search
        return search is not None and not search.context

    async def count(self) -> int:
        """How many entries (with grep=: matches) the range would send, without sending."""
        total = 0
        try:
            async for taken, _, _ in self._range(None, NativeFormat.COUNT):
                total += taken
        finally:
            await self.aclose()
        return self.selector.matched if self.selector is not None else total

    async def batches(self, *, heartbeat: float = HEARTBEAT_INTERVAL) -> AsyncIterator[list[Entry]]:
        """Lists of entries; while following, [] after `heartbeat` seconds idle."""
        try:
            if self.follow:
                async for batch in self._follow(heartbeat):
                    yield batch
            else:
                async for _, batch, _ in self._range(None, None):
                    yield batch
        finally:
            await self.aclose()

    async def encoded(self, encoder: Encoder) -> AsyncIterator[bytes]:
        """A range read as bytes, encoded on the journal thread one batch ahead of the
        sender, so reading overlaps with writing to the socket; in C (app/journal/_fast.c)
        for the formats it writes."""
        try:
            async for _, _, data in self._range(encoder.encode, native_format(encoder)):
                if data:
                    yield data
        finally:
            await self.aclose()

    async def _range(
        self, encode: Callable[[list[Entry]], bytes] | None, native: NativeFormat | None
    ) -> AsyncIterator[tuple[int, list[Entry], bytes]]:
        """(entries taken, the entries when read in Python, their bytes) per batch.
        `native`: the format to read in C when no search is involved (entries then [])."""
        lease = self._lease
        assert lease is not None
        step: Callable[[], tuple[int, list[Entry], bytes, bool]]
        if native is not None and self.selector is None:
            handle, size = lease.handle, NATIVE_BATCH
            step = lambda: self._native_step(handle, size, native)  # noqa: E731
        else:
            read: Callable[[int], list[Entry]] = (
                lease.handle.read_backward if self.query.reverse else lease.handle.read_forward
            )
            size = self._journal.settings.read_batch
            if self._scanning:
                read = self._scanner(lease.handle)
                size = SCAN_BATCH
            step = lambda: self._range_step(read, size, encode)  # noqa: E731
            if self._scanning and indexable(self.query, follow=self.follow):
                step = self._indexed(lease.handle, read, size, encode)
        ahead = Prefetch(lease, step, lambda r: r[3])
        try:
            while True:
                taken, entries, data, done = await ahead.get()
                if taken:
                    yield taken, entries, data
                if done:
                    return
        finally:
            ahead.close()

    def _native_step(
        self, handle: Handle, size: int, fmt: NativeFormat
    ) -> tuple[int, list[Entry], bytes, bool]:
        """`_range_step` in C: the same window, limit and bytes. On the journal thread."""
        if self._exhausted:
            return 0, [], b"", True
        q = self.query
        got = handle.read_encoded(
            size, fmt, reverse=q.reverse, since=q.since, until=q.until, limit=self._remaining
        )
        if got.last_realtime is None:
            return 0, [], b"", True
        if self._remaining is not None:
            self._remaining -= got.emitted
        past_window = self._beyond_window_at(got.last_realtime)
        return got.emitted, [], got.data, got.ended or past_window or self._exhausted

    def _indexed(
        self,
        handle: Handle,
        scan: Callable[[int], list[Entry]],
        size: int,
        encode: Callable[[list[Entry]], bytes] | None,
    ) -> Callable[[], tuple[int, list[Entry], bytes, bool]]:
        """The steps of a search that may go through the index (app/journal/index.py):
        scan a share of the journal; if the read is not done by then, look the rest up in
        the index and hand out its matches in read order as the scanner would (or go on
        scanning, if the index cannot answer)."""
        journal = self._journal
        bounds = journal.settings.index_bounds
        index: MessageIndex | None = None
        first = -1  # entries still to scan first (-1: none, the index or the scan decided)

        def read(size: int) -> list[Entry]:
            if index is None or index.entries is None:
                return scan(size)
            batch, self._scan_end = index.take(size)
            return batch

        def step() -> tuple[int, list[Entry], bytes, bool]:
            nonlocal index, first
            if index is None:  # the first step: on the journal thread, as it lists files
                files = journal_files(journal.pool.location)
                index = MessageIndex(handle, files, self.query, bounds=bounds)
                total = entries_in(files)
                if total is None:
                    index.fall_back("files")
                    journal.index_reads[index.reason] += 1
                else:
                    first = int(total * bounds.scan_first)
            if index.finished:
                return self._range_step(read, size, encode)
            if first > 0:
                now = min(size, first)
                first -= now
                result = self._range_step(scan, now, encode)
                if result[3]:
                    journal.index_reads["scanned"] += 1
                return result
            index.step()
            if index.finished:
                if self._scan_end:
                    index.keep_after(self._scan_end)
                journal.index_reads["index" if index.entries is not None else index.reason] += 1
            return 0, [], b"", False

        return step

    def _scanner(self, handle: Handle) -> Callable[[int], list[Entry]]:
        """`read` for a search without context: the matches of the next `size` entries.
        Sets `_scan_end` to the last entry looked at ('' when the journal ended)."""
        search = self.query.search
        assert search is not None
        scan = handle.scan_backward if self.query.reverse else handle.scan_forward

        def read(size: int) -> list[Entry]:
            found, last = scan(size, search)
            self._scan_end = "" if last is None else last
            return found

        return read

    def _range_step(
        self,
        read: Callable[[int], list[Entry]],
        size: int,
        encode: Callable[[list[Entry]], bytes] | None,
    ) -> tuple[int, list[Entry], bytes, bool]:
        """One batch of a range read. Runs on the journal thread, one call at a time."""
        if self._exhausted:
            return 0, [], b"", True
        batch = read(size)
        if self._scanning:
            end = self._scan_end
            if not batch and not end:
                return 0, [], b"", True
            past_window = not end or self._beyond_window_at(_realtime(end))
            if not batch:
                return 0, [], b"", past_window
        elif not batch:
            return 0, [], b"", True
        else:
            past_window = self._beyond_window_at(batch[-1].realtime)
        q = self.query
        if q.since is not None or q.until is not None:
            batch = [e for e in batch if q.in_time_window(e)]
        entries = self._take(batch)
        data = encode(entries) if encode is not None and entries else b""
        return len(entries), entries, data, past_window or self._exhausted

    def _beyond_window_at(self, realtime: int) -> bool:
        q = self.query
        if q.reverse:
            return q.since is not None and realtime < q.since
        return q.until is not None and realtime > q.until

    async def _follow(self, heartbeat: float) -> AsyncIterator[list[Entry]]:
        query = self.query
        while True:
            sub = self._sub = self._journal.tail.subscribe(query)
            try:
                async for batch in self._catch_up(sub.start, heartbeat):
                    yield batch
                    if self._exhausted or self._expired():
                        return
                if self._lease is not None:
                    self._lease.release()
                    self._lease = None
                quiet_since = time.monotonic()
                while True:
                    idle = heartbeat
                    if self.deadline is not None:
                        idle = min(heartbeat, self.deadline - time.time())
                        if idle <= 0:
                            return
                    entries = await sub.get(idle)
                    if self._last is not None:
                        last = self._last.seqnum
                        entries = [e for e in entries if e.seqnum.after(last)]
                    if query.until is not None and (
                        any(e.realtime > query.until for e in entries)
                        or (not entries and time.time() * 1e6 > query.until)
                    ):
                        entries = self._take([e for e in entries if e.realtime <= query.until])
                        if entries:
                            yield entries
                        return
                    taken = self._take(entries)
                    if taken or not entries or time.monotonic() - quiet_since >= heartbeat:
                        # [] only when idle: a search's non-matching lines are not a ping each.
                        quiet_since = time.monotonic()
                        yield taken
                    if self._exhausted:
                        return
            except Lagged:
                await self._resume(sub)
            finally:
                sub.close()
                self._sub = None

    def _expired(self) -> bool:
        return self.deadline is not None and time.time() >= self.deadline

    async def _catch_up(self, cutoff: Entry | None, heartbeat: float) -> AsyncIterator[list[Entry]]:
        """Up to and including `cutoff`, on our own handle. A search may scan long without
        a match: [] every `heartbeat` seconds keeps the client's stream alive meanwhile."""
        lease = self._lease
        if lease is None or cutoff is None:
            return
        stop = cutoff.seqnum
        size = self._journal.settings.read_batch
        read: Callable[[int], list[Entry]] = lease.handle.read_forward
        if self._scanning:
            read, size = self._scanner(lease.handle), SCAN_BATCH
        quiet_since = time.monotonic()
        while True:
            batch = await lease.call(read, size)
            if self._scanning:
                end = self._scan_end
                done = not end or seqnum_of(end).after(stop)
            elif not batch:
                return
            else:
                done = batch[-1].seqnum.after(stop)
            if done:
                batch = [e for e in batch if not e.seqnum.after(stop)]
            entries = self._take([e for e in batch if self.query.in_time_window(e)])
            if self._scanning and not done and self._scan_end:
                # Looked at up to there: the live tail must not hand us those again.
                self._last = Entry({}, self._scan_end)
            if entries:
                quiet_since = time.monotonic()
                yield entries
            elif time.monotonic() - quiet_since >= heartbeat:
                quiet_since = time.monotonic()
                yield []
            if done or self._exhausted:
                return

    async def _resume(self, lagged: Subscription) -> None:
        """After lagging, read on our own again from the last entry we sent."""
        if self._lease is None:
            self._lease = await self._journal.pool.lease()
        handle = self._lease.handle
        after = self._last or lagged.start
        await self._lease.call(_resume_after, handle, self.query, after)


def _realtime(cursor: str) -> int:
    return int(cursor.split(";", 5)[4][2:], 16)


def _resume_after(handle: Handle, query: Query, after: Entry | None) -> None:
    handle.reset(query)
    if after is not None:
        handle.resume_after(after.cursor)


def _unique(handle: Handle, field: str) -> list[str]:
    handle.reset()
    return handle.unique(field)
