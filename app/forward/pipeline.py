"""One pipeline: feeds → a bounded queue → batches → every sink → the durable position.

The position advances only after every sink accepted the batch, so after a crash at most
the batch in flight is sent again. While a sink retries, nothing more is taken from the
queue; once the queue is full the feeds stop reading, and the gateway's stream stops with
them (TCP backpressure): memory stays bounded by `QUEUE_CHUNKS` reads and one batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from app.forward import position
from app.forward.record import BadRecord, Record
from app.forward.sink import Sink, SinkError
from app.forward.source import (
    DISCOVERY_PERIOD,
    AccessDenied,
    Chunk,
    Feed,
    Gateway,
    SourceFailed,
)
from app.forward.stats import PipelineStats
from app.forward.tasks import TaskLabels

QUEUE_CHUNKS = 64  # reads (an SSE chunk's events each) held between the feeds and the batcher
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
# A receiver that accepts the connection and closes it on every batch this many times in a
# row is refusing, not restarting: the pipeline ends and says so.
REFUSAL_LIMIT = 5
STATUS_PERIOD = 1.0
STOP_FLUSH_TIMEOUT = 5.0  # SIGTERM while a sink retries: then exit, the position unsaved

LEGACY_MASTER_KEY = "master"

EXIT_OK, EXIT_ERROR, EXIT_DENIED, EXIT_REFUSED = 0, 1, 3, 4

Note = Callable[[str], None]
Discover = Callable[[Gateway], Awaitable[Sequence[Feed]]]


class SinkRefused(Exception):
    pass


@dataclass
class _Stop:
    error: BaseException | None = None


@dataclass
class Pipeline:
    name: str
    source: str  # the source's label, which the state file must match
    discover: Discover
    rediscover: bool  # cluster: look for new agents now and then
    gateway: Gateway
    sinks: Sequence[Sink]
    state: Path
    batch_size: int = 1000
    linger: float = 0.2
    note: Note = print
    stats: PipelineStats = field(init=False)

    def __post_init__(self) -> None:
        self.stats = PipelineStats(self.name, self.source, [s.name for s in self.sinks])
        self._queue: asyncio.Queue[Chunk | _Stop] = asyncio.Queue(QUEUE_CHUNKS)
        self._feeds: dict[str, asyncio.Task[None]] = {}
        self._positions: dict[str, str] = {}
        self._stopping = False
        self._status_due = 0.0
        self._carry: Chunk | None = None  # the part of a read that did not fit a batch
        self._labels = TaskLabels(self.gateway.get, note=self.note)

    async def run(self, stop: asyncio.Event) -> int:
        """Until `stop` is set (then: flush, save, 0) or an error that ends the pipeline."""
        self._positions = position.load(self.state, source=self.source)
        stopper = asyncio.create_task(self._stop_on(stop))
        try:
            await self._start_feeds()
            discovery = asyncio.create_task(self._rediscover()) if self.rediscover else None
            try:
                return await self._batches(stop)
            finally:
                if discovery is not None:
                    discovery.cancel()
        except AccessDenied as exc:
            self.note(f"access denied, the pipeline ends: {exc}")
            return EXIT_DENIED
        except SourceFailed as exc:
            self.note(str(exc))
            return EXIT_ERROR
        except SinkRefused as exc:
            self.note(str(exc))
            return EXIT_REFUSED
        finally:
            stopper.cancel()
            await self._cancel_feeds()
            self._write_status(force=True)
            for sink in self.sinks:
                with contextlib.suppress(Exception):
                    await sink.close()
            await self.gateway.aclose()

    async def _stop_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._stopping = True
        await self._cancel_feeds()
        await self._queue.put(_Stop())

    async def _start_feeds(self) -> None:
        for feed in await self.discover(self.gateway):
            if feed.key not in self._feeds and not self._stopping:
                start = self._positions.get(feed.key)
                if start is None and feed.key.startswith("master:"):
                    # A state file from when `cluster` read one master (the leader's journal,
                    # where the gateway's /system/v1/logs goes): the leader, listed first,
                    # resumes there instead of sending that journal again.
                    start = self._positions.pop(LEGACY_MASTER_KEY, None)
                task = asyncio.create_task(self._follow(feed, start), name=f"feed {feed.key}")
                self._feeds[feed.key] = task

    async def _rediscover(self) -> None:
        while True:
            await asyncio.sleep(DISCOVERY_PERIOD)
            try:
                await self._start_feeds()
            except (SourceFailed, OSError) as exc:
                self.note(f"cannot list the cluster's agents: {exc}")
            except AccessDenied as exc:
                await self._queue.put(_Stop(exc))
                return

    async def _follow(self, feed: Feed, start: str | None) -> None:
        try:
            await self.gateway.follow(feed, start, self._queue.put)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # ends the pipeline, through the batcher
            await self._queue.put(_Stop(exc))

    async def _cancel_feeds(self) -> None:
        tasks = [t for t in self._feeds.values() if not t.done()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _batches(self, stop_event: asyncio.Event) -> int:
        while True:
            chunks, stop = await self._collect()
            if chunks and not await self._deliver_or_stop(chunks, stop_event):
                self.note("stopped before every sink accepted the last batch; it is sent again")
                return EXIT_OK
            self._write_status()
            if stop is not None:
                if stop.error is not None:
                    raise stop.error
                return EXIT_OK

    async def _deliver_or_stop(self, chunks: list[Chunk], stop_event: asyncio.Event) -> bool:
        """Deliver and save; False when SIGTERM came and the sinks did not accept within
        `STOP_FLUSH_TIMEOUT` (a sink down: the position stays where it was)."""
        delivery = asyncio.create_task(self._deliver(chunks))
        stopped = asyncio.create_task(stop_event.wait())
        try:
            await asyncio.wait({delivery, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not delivery.done():
                await asyncio.wait({delivery}, timeout=STOP_FLUSH_TIMEOUT)
            if not delivery.done():
                delivery.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await delivery
                return False
            delivery.result()  # a refusal or an error propagates
            return True
        finally:
            stopped.cancel()

    async def _collect(self) -> tuple[list[Chunk], _Stop | None]:
        """Up to a batch of chunks: what is queued now, else what comes within `linger`
        of the first one."""
        chunks: list[Chunk] = []
        count = 0
        deadline = 0.0
        queue = self._queue
        while count < self.batch_size:
            if self._carry is not None:
                item: Chunk | _Stop = self._carry
                self._carry = None
            else:
                try:
                    item = queue.get_nowait()
                except asyncio.QueueEmpty:
                    if chunks:
                        timeout = deadline - time.monotonic()
                        if timeout <= 0:
                            break
                    else:
                        timeout = STATUS_PERIOD
                        self.stats.idle = True
                    try:
                        item = await asyncio.wait_for(queue.get(), timeout)
                    except TimeoutError:
                        if chunks:
                            break
                        self._write_status()
                        continue
            if isinstance(item, _Stop):
                if self._stopping and item.error is None:
                    # Drain what the feeds had queued before they stopped (one more batch
                    # at most may exceed the batch size here).
                    while not queue.empty():
                        rest = queue.get_nowait()
                        if isinstance(rest, Chunk):
                            chunks.append(rest)
                return chunks, item
            if not chunks:
                deadline = time.monotonic() + self.linger
                self.stats.idle = False
            room = self.batch_size - count
            if len(item.events) > room:
                # Batches are exact: at most one batch is ever sent again after a crash.
                self._carry = Chunk(item.feed, item.events[room:])
                item = Chunk(item.feed, item.events[:room])
            chunks.append(item)
            count += len(item.events)
        return chunks, None

    async def _deliver(self, chunks: list[Chunk]) -> None:
        records: list[Record] = []
        advanced: dict[str, str] = {}
        for chunk in chunks:
            for event_id, data in chunk.events:
                try:
                    record = Record.parse(data, event_id)
                except BadRecord as exc:
                    self.note(f"skipped: {exc}")
                    continue
                records.append(record)
                advanced[chunk.feed] = event_id or record.cursor
        if records:
            records = await self._labels.label(records)
            await asyncio.gather(*(self._send(sink, records) for sink in self.sinks))
        self._positions.update(advanced)
        await asyncio.to_thread(
            position.save, self.state, source=self.source, positions=self._positions
        )
        self.stats.acknowledged(records, queued=self._queue.qsize())

    async def _send(self, sink: Sink, records: list[Record]) -> None:
        delay = BACKOFF_FIRST
        refusals = 0
        attempt = 0
        while True:
            attempt += 1
            try:
                await sink.send(records)
            except SinkError as exc:
                self.stats.sink_error(sink.name, str(exc))
                if not exc.retryable:
                    raise SinkRefused(f"{sink.name} refused the batch: {exc}") from exc
                refusals = refusals + 1 if exc.refused else 0
                if refusals >= REFUSAL_LIMIT:
                    raise SinkRefused(
                        f"{sink.name} closed the connection on {refusals} attempts in a row: "
                        f"it refuses what is sent ({exc})"
                    ) from exc
                wait = exc.retry_after if exc.retry_after is not None else delay
                self.note(f"{sink.name}: {exc} (attempt {attempt}); retrying in {wait:g} s")
                await asyncio.sleep(wait)
                delay = min(delay * 2, BACKOFF_MAX)
                continue
            self.stats.sink_ok(sink.name)
            return

    def _write_status(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self._status_due:
            return
        self._status_due = now + STATUS_PERIOD
        document = self.stats.document(self._positions)
        with contextlib.suppress(OSError):
            position.write_atomic(position.status_path(self.state), document, durable=False)
