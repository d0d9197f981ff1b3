from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from app.journal.prefetch import Prefetch


class ThreadLease:
    """Just the part of `Lease` that Prefetch uses: submit work to a thread."""

    def __init__(self, executor: concurrent.futures.Executor) -> None:
        self.executor = executor
        self.submitted = 0

    def submit(self, fn: Callable[..., Any], *args: object) -> concurrent.futures.Future[Any]:
        self.submitted += 1
        return self.executor.submit(functools.partial(fn, *args))


@pytest.fixture
def lease() -> Iterator[ThreadLease]:
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        yield ThreadLease(ex)


class Counter:
    def __init__(self, n: int) -> None:
        self.n = n
        self.produced = 0
        self.lock = threading.Lock()

    def step(self) -> int:
        with self.lock:
            self.produced += 1
            return self.produced


async def test_items_arrive_in_order_and_stop_at_the_last(lease: ThreadLease) -> None:
    c = Counter(10)
    ahead: Prefetch[int] = Prefetch(lease, c.step, lambda i: i == 10)  # type: ignore[arg-type]
    got = [await ahead.get() for _ in range(10)]
    assert got == list(range(1, 11))
    await asyncio.sleep(0.05)
    assert c.produced == 10


async def test_never_more_than_depth_ahead_of_a_slow_consumer(lease: ThreadLease) -> None:
    c = Counter(1000)
    ahead: Prefetch[int] = Prefetch(lease, c.step, lambda i: i == 1000, depth=3)  # type: ignore[arg-type]
    for expected in range(1, 6):
        assert await ahead.get() == expected
        await asyncio.sleep(0.05)  # a slow client: the producer fills up and stops
        assert c.produced <= expected + 3
    ahead.close()


async def test_errors_reach_the_consumer(lease: ThreadLease) -> None:
    calls = iter([1, 2])

    def step() -> int:
        value = next(calls, None)
        if value is None:
            raise RuntimeError("journal went away")
        return value

    ahead: Prefetch[int] = Prefetch(lease, step, lambda i: False)  # type: ignore[arg-type]
    assert await ahead.get() == 1
    assert await ahead.get() == 2
    with pytest.raises(RuntimeError, match="journal went away"):
        await ahead.get()


async def test_close_stops_production(lease: ThreadLease) -> None:
    c = Counter(10**6)
    ahead: Prefetch[int] = Prefetch(lease, c.step, lambda i: False, depth=2)  # type: ignore[arg-type]
    await ahead.get()
    ahead.close()
    await asyncio.sleep(0.05)
    before = c.produced
    await asyncio.sleep(0.05)
    assert c.produced == before <= 4
