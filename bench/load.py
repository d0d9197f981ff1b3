"""A lean HTTP/1.1 keep-alive load client: uvloop, one asyncio Protocol per connection and
httptools parsing the responses (chunked bodies included).

httpx would be the obvious client, but on this 2-core machine it costs about as much CPU per
request as the servers under test, so it would cap what it can measure and shrink every ratio
towards 1. This client only writes a prepared request and counts the body's lines; its own
ceiling is measured in the same run (`hammer` against a static file) and printed beside the
figures it produces.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import cast

import httptools
import uvloop

CONNECT_TIMEOUT = 5.0
REPLY_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class Target:
    """One prepared GET on host:port; `lines` is the body's line count that makes it OK."""

    host: str
    port: int
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    lines: int | None = None

    def request(self) -> bytes:
        head = [f"GET {self.path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        head += [f"{name}: {value}" for name, value in self.headers]
        return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    lines: int
    size: int


class _Connection(asyncio.Protocol):
    """One keep-alive connection with at most one request in flight."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._waiter: asyncio.Future[Reply] | None = None
        self._lines = self._size = 0

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionError(f"bad response: {exc}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._fail(ConnectionError("connection closed"))

    # httptools callbacks
    def on_body(self, body: bytes) -> None:
        self._lines += body.count(b"\n")
        self._size += len(body)

    def on_message_complete(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(Reply(self._parser.get_status_code(), self._lines, self._size))

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    async def fetch(self, request: bytes) -> Reply:
        if self._transport is None:
            raise ConnectionError("connection closed")
        self._lines = self._size = 0
        self._waiter = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        return await asyncio.wait_for(self._waiter, REPLY_TIMEOUT)

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


async def _connect(target: Target) -> _Connection:
    loop = asyncio.get_running_loop()
    opening = loop.create_connection(_Connection, target.host, target.port)
    _, conn = await asyncio.wait_for(opening, CONNECT_TIMEOUT)
    return conn


@dataclass(slots=True)
class Tally:
    """Replies counted as OK (status 200 and the expected line count) or by what went wrong."""

    ok: int = 0
    problems: Counter[str] = field(default_factory=Counter)

    def add(self, target: Target, reply: Reply) -> None:
        if reply.status == 200 and target.lines in (None, reply.lines):
            self.ok += 1
        elif reply.status != 200:
            self.problems[f"HTTP {reply.status}"] += 1
        else:
            self.problems[f"{reply.lines} lines"] += 1

    def describe(self) -> str:
        return ", ".join(f"{n} x {what}" for what, n in self.problems.most_common()) or "none"


def _percentile(values: Sequence[float], p: float) -> float:
    """Nearest rank on sorted `values`; NaN for none."""
    if not values:
        return float("nan")
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


@dataclass(frozen=True, slots=True)
class Load:
    ok: int
    seconds: float
    problems: str
    failed: int
    millis: tuple[float, ...] = ()  # each OK reply's latency under this load, sorted

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, p: float) -> float:
        return _percentile(self.millis, p)


async def _hammer(target: Target, connections: int, seconds: float, rate: float | None) -> Load:
    request = target.request()
    tally = Tally()
    millis: list[float] = []
    conns = list(await asyncio.gather(*(_connect(target) for _ in range(connections))))
    # Paced: each connection sends on its own schedule, `connections / rate` apart, staggered;
    # a reply's latency counts from when its request was due, so a late send is not hidden
    # (no coordinated omission).
    interval = connections / rate if rate else 0.0

    async def worker(index: int, deadline: float) -> None:
        due = time.perf_counter() + interval * index / connections
        while True:  # at least one request per connection, however short the run
            if interval:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                sent, due = due, due + interval
            else:
                sent = time.perf_counter()
            try:
                reply = await conns[index].fetch(request)
                before = tally.ok
                tally.add(target, reply)
                if tally.ok > before:
                    millis.append((time.perf_counter() - sent) * 1e3)
            except (ConnectionError, TimeoutError) as exc:
                tally.problems[type(exc).__name__] += 1
                conns[index].close()
                conns[index] = await _connect(target)
            if time.perf_counter() >= deadline:
                return

    started = time.perf_counter()
    try:
        # Requests in flight at the deadline finish and count: the clock stops after them.
        await asyncio.gather(*(worker(i, started + seconds) for i in range(connections)))
        elapsed = time.perf_counter() - started
    finally:
        for conn in conns:
            conn.close()
    failed = sum(tally.problems.values())
    return Load(tally.ok, elapsed, tally.describe(), failed, tuple(sorted(millis)))


@contextlib.contextmanager
def _heap_frozen() -> Iterator[None]:
    """The client's own heap out of its garbage collector's sight while it measures: the bench
    imports most of Logway (~100,000 objects), and a full collection of them (~30 ms of CPU,
    measured) in the middle of a run would count as the servers' latency."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def hammer(target: Target, *, connections: int, seconds: float, rate: float | None = None) -> Load:
    """`connections` keep-alive connections, each sending its next request as soon as the
    previous reply is complete (or, given `rate`, at `rate` requests per second over all of
    them), for `seconds`; OK replies per second and their latencies."""
    with _heap_frozen():
        return uvloop.run(_hammer(target, connections, seconds, rate))


@dataclass(frozen=True, slots=True)
class Latencies:
    millis: tuple[tuple[float, ...], ...]  # per target, sorted
    failed: str

    def percentile(self, target: int, p: float) -> float:
        return _percentile(self.millis[target], p)


async def _sequential(targets: Sequence[Target], rounds: int) -> Latencies:
    conns = [await _connect(t) for t in targets]
    requests = [t.request() for t in targets]
    millis: list[list[float]] = [[] for _ in targets]
    tally = Tally()
    try:
        for n in range(rounds):
            # One request at a time, alternating the targets (and which goes first), so that
            # every target sees the same machine.
            order = range(len(targets)) if n % 2 == 0 else reversed(range(len(targets)))
            for i in order:
                started = time.perf_counter()
                try:
                    reply = await conns[i].fetch(requests[i])
                except (ConnectionError, TimeoutError) as exc:
                    tally.problems[type(exc).__name__] += 1
                    conns[i].close()
                    conns[i] = await _connect(targets[i])
                    continue
                elapsed = time.perf_counter() - started
                before = tally.ok
                tally.add(targets[i], reply)
                if tally.ok > before:
                    millis[i].append(elapsed * 1e3)
    finally:
        for conn in conns:
            conn.close()
    return Latencies(tuple(tuple(sorted(m)) for m in millis), tally.describe())


def sequential(targets: Sequence[Target], *, rounds: int) -> Latencies:
    """`rounds` requests to each target, one at a time over one connection each."""
    with _heap_frozen():
        return uvloop.run(_sequential(targets, rounds))
