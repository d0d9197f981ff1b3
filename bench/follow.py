"""Follow latency: one SSE follower, a writer stamping each entry with its send time.

arrival - send covers journald too: it tells readers about appended entries (the inotify
event a follower waits on) at most every 250 ms (POST_CHANGE_TIMER_INTERVAL_USEC in
journald-server.c), although the entry is in the mapped file at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson

from bench.fill import datagram, send_paced
from bench.metrics import wait_for_followers

MARK_FIELD = "BENCH"
MARK = "latency"
SENT_FIELD = "BENCH_SENT_NS"
SPACING = (0.002, 0.005)  # seconds between two entries, drawn uniformly
GRACE = 10.0  # after the last send, how long the follower may still wait


@dataclass(frozen=True, slots=True)
class Latency:
    sent: int
    received: int
    millis: tuple[float, ...]  # sorted

    def percentile(self, p: float) -> float:
        if not self.millis:
            return float("nan")
        index = min(len(self.millis) - 1, round(p / 100 * (len(self.millis) - 1)))
        return self.millis[index]


def stamped(count: int) -> Iterator[bytes]:
    for i in range(count):
        fields = {
            MARK_FIELD: MARK,
            "SYSLOG_IDENTIFIER": "bench-latency",
            "STREAM": "STDOUT",
            "MESSAGE": f"latency probe {i:06d} of {count}, stamped with its send time",
            SENT_FIELD: str(time.time_ns()),
        }
        yield datagram(fields)


async def _collect(response: httpx.Response, count: int, out: list[float]) -> None:
    """Until `count` entries arrived (those the follower's filter or search lets through)."""
    async for line in response.aiter_lines():
        if not line.startswith("data:"):
            continue
        arrived = time.time_ns()
        fields = orjson.loads(line[5:])["fields"]
        out.append((arrived - int(fields[SENT_FIELD])) / 1e6)
        if len(out) >= count:
            return


async def measure(
    base_url: str, socket_path: Path, count: int, *, query: str = "", expect: int | None = None
) -> Latency:
    """`query`: more parameters for the follower (a `grep=`); `expect`: how many of the
    `count` written entries it should receive (all by default)."""
    url = f"{base_url}/v1/stream/?filter={MARK_FIELD}:{MARK}" + (f"&{query}" if query else "")
    wanted = count if expect is None else expect
    millis: list[float] = []
    headers = {"Accept": "text/event-stream"}
    async with (
        httpx.AsyncClient(timeout=None) as client,
        client.stream("GET", url, headers=headers) as response,
    ):
        response.raise_for_status()
        await wait_for_followers(client, base_url, lambda n: n >= 1)
        pace = random.Random(1)
        stop = threading.Event()
        writer = threading.Thread(
            target=send_paced,
            args=(socket_path, stamped(count), lambda: pace.uniform(*SPACING), stop),
        )
        writer.start()
        budget = count * max(SPACING) * 2 + GRACE
        try:
            # A timeout is reported as fewer received than sent.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_collect(response, wanted, millis), budget)
        finally:
            stop.set()
            writer.join()
    return Latency(sent=wanted, received=len(millis), millis=tuple(sorted(millis)))
