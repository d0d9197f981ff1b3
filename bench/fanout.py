"""Many concurrent SSE followers on minimal HTTP/1.1 connections.

The client shares two cores with the server, so each follower is a bare asyncio
connection that only counts a marker in the bytes it receives (chunk framing never splits
an event: the server writes whole events, and a marker cut between two reads is found
through the carry).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.fill import datagram, send_paced
from bench.metrics import FOLLOWERS, HANDLES, scrape, wait_for_followers
from bench.servers import fds_under, status_field

CONNECT_BATCH = 100  # connections opened concurrently, batch after batch
MARKER = b"fanout-mark "
WRITE_SPACING = 0.005
DELIVERY_TIMEOUT = 60.0
POLL = 0.02


@dataclass(frozen=True, slots=True)
class NodeSample:
    """What the node process holds at one moment."""

    followers: int
    handles: int  # logway_node_journal_handles: the live tail plus pooled handles
    journal_fds: int  # descriptors pointing into the journal directory
    fd_handles: int  # sd_journal handles seen from /proc: most fds on one journal file
    rss: int  # VmRSS: includes the journal files' pages mapped by sd_journal
    rss_anon: int  # RssAnon: the process's own memory
    peak_rss: int  # VmHWM


@dataclass(frozen=True, slots=True)
class FanOut:
    requested: int
    connected: int
    failed: int
    reach_seconds: float  # until /metrics showed every follower
    ramp_peak_handles: int  # most journal handles /metrics showed while connecting
    baseline: NodeSample
    attached: NodeSample  # every follower connected, before the writes
    delivered: NodeSample  # after the writes reached everyone (or timed out)
    closed: NodeSample
    close_seconds: float
    sent: int
    complete: int  # followers that received every written entry
    deliveries: int
    deliver_seconds: float
    journal_files: int


class Follower:
    def __init__(self) -> None:
        self.seen = 0
        self._writer: asyncio.StreamWriter | None = None
        self._task: asyncio.Task[None] | None = None

    async def open(self, host: str, port: int, path: str) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        self._writer = writer
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
            "Accept: text/event-stream\r\n\r\n".encode()
        )
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise ConnectionError(head.split(b"\r\n", 1)[0].decode(errors="replace"))
        self._task = asyncio.create_task(self._count(reader))

    async def _count(self, reader: asyncio.StreamReader) -> None:
        keep = len(MARKER) - 1
        carry = b""
        while chunk := await reader.read(65536):
            data = carry + chunk
            self.seen += data.count(MARKER)
            carry = data[-keep:]

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await self._task


async def _sample(client: httpx.AsyncClient, base_url: str, pid: int, journal: Path) -> NodeSample:
    gauges = await scrape(client, base_url)
    files = fds_under(pid, journal)
    return NodeSample(
        followers=int(gauges[FOLLOWERS]),
        handles=int(gauges[HANDLES]),
        journal_fds=sum(files.values()),
        fd_handles=max(files.values(), default=0),
        rss=status_field(pid, "VmRSS"),
        rss_anon=status_field(pid, "RssAnon"),
        peak_rss=status_field(pid, "VmHWM"),
    )


async def _peak_handles(client: httpx.AsyncClient, base_url: str, stop: asyncio.Event) -> int:
    peak = 0
    while not stop.is_set():
        peak = max(peak, int((await scrape(client, base_url))[HANDLES]))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), POLL)
    return peak


async def _connect(host: str, port: int, count: int, into: list[Follower]) -> int:
    """Open `count` followers in batches, appending to `into` (closed by the caller even
    if we fail half way); returns how many failed to open."""
    path = "/v1/stream/?skip_prev=1"
    failed = 0
    for start in range(0, count, CONNECT_BATCH):
        batch = [Follower() for _ in range(min(CONNECT_BATCH, count - start))]
        results = await asyncio.gather(
            *(f.open(host, port, path) for f in batch), return_exceptions=True
        )
        for follower, result in zip(batch, results, strict=True):
            if isinstance(result, BaseException):
                failed += 1
                await follower.close()
            else:
                into.append(follower)
    return failed


async def _ramp(
    client: httpx.AsyncClient, host: str, port: int, count: int, into: list[Follower]
) -> tuple[int, float, int]:
    """Connect, wait for /metrics to show them all; (failed, seconds, peak handles)."""
    base_url = f"http://{host}:{port}"
    started = time.monotonic()
    done = asyncio.Event()
    sampler = asyncio.create_task(_peak_handles(client, base_url, done))
    try:
        failed = await _connect(host, port, count, into)
        await wait_for_followers(client, base_url, lambda n: n >= len(into))
    finally:
        done.set()
        peak = await sampler
    return failed, time.monotonic() - started, peak


def marked(count: int) -> Iterator[bytes]:
    for i in range(count):
        message = f"{MARKER.decode()}{i:05d} of {count}, one line for every follower"
        yield datagram({"SYSLOG_IDENTIFIER": "bench-fanout", "MESSAGE": message})


async def _write_marked(socket_path: Path, count: int) -> None:
    stop = threading.Event()
    try:
        await asyncio.to_thread(send_paced, socket_path, marked(count), lambda: WRITE_SPACING, stop)
    finally:
        stop.set()  # cancelled: the thread sends nothing more


async def _await_delivery(followers: list[Follower], count: int) -> None:
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while time.monotonic() < deadline and not all(f.seen >= count for f in followers):
        await asyncio.sleep(POLL)


async def measure(
    *, host: str, port: int, pid: int, journal: Path, socket_path: Path, count: int, writes: int
) -> FanOut:
    base_url = f"http://{host}:{port}"
    followers: list[Follower] = []
    async with httpx.AsyncClient(timeout=10.0) as client:
        baseline = await _sample(client, base_url, pid, journal)
        try:
            failed, reach, ramp_peak = await _ramp(client, host, port, count, followers)
            attached = await _sample(client, base_url, pid, journal)
            send_started = time.monotonic()
            await _write_marked(socket_path, writes)
            await _await_delivery(followers, writes)
            deliver = time.monotonic() - send_started
            delivered = await _sample(client, base_url, pid, journal)
        finally:
            await asyncio.gather(*(f.close() for f in followers))
        _, close_seconds = await wait_for_followers(client, base_url, lambda n: n == 0)
        closed = await _sample(client, base_url, pid, journal)
    return FanOut(
        requested=count,
        connected=len(followers),
        failed=failed,
        reach_seconds=reach,
        ramp_peak_handles=ramp_peak,
        baseline=baseline,
        attached=attached,
        delivered=delivered,
        closed=closed,
        close_seconds=close_seconds,
        sent=writes,
        complete=sum(f.seen >= writes for f in followers),
        deliveries=sum(min(f.seen, writes) for f in followers),
        deliver_seconds=deliver,
        journal_files=sum(1 for p in journal.iterdir() if p.suffix == ".journal"),
    )
