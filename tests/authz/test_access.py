"""`AccessWatcher` alone: a fake change signal and clock, streams as leases."""

from __future__ import annotations

import asyncio
import time

import pytest

from app.authz.access import (
    ACCESS_REVOKED,
    TOKEN_EXPIRED,
    AccessWatcher,
    TtlSignal,
    final_event,
)
from app.core.errors import Unavailable


class Signal:
    def __init__(self) -> None:
        self.value = 0

    def generation(self) -> int:
        return self.value


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Decider:
    """A recheck that counts its calls and answers `allowed` (or raises `fails`)."""

    def __init__(self) -> None:
        self.allowed = True
        self.calls = 0
        self.fails: Exception | None = None

    async def __call__(self) -> bool:
        self.calls += 1
        if self.fails is not None:
            raise self.fails
        return self.allowed


def make() -> tuple[AccessWatcher, Signal, Clock]:
    signal, clock = Signal(), Clock()
    return AccessWatcher(signal, period=1.0, clock=clock), signal, clock


async def test_an_expiry_ends_the_stream_at_exp_and_not_before() -> None:
    watcher, _, clock = make()
    access = watcher.register("alice", 1010.0, Decider())
    clock.now = 1009.9
    await watcher.check()
    assert access.reason is None
    clock.now = 1010.0
    await watcher.check()
    assert await access.ended() == TOKEN_EXPIRED
    assert watcher.open_streams == 0


async def test_no_change_of_the_signal_asks_nobody_again() -> None:
    watcher, _, _ = make()
    decider = Decider()
    watcher.register("alice", None, decider)
    await watcher.check()  # the first look only learns the generation
    await watcher.check()
    await watcher.check()
    assert decider.calls <= 1


async def test_a_change_asks_every_stream_again_and_ends_the_denied_ones() -> None:
    watcher, signal, _ = make()
    await watcher.check()
    kept, lost = Decider(), Decider()
    a = watcher.register("alice", None, kept)
    b = watcher.register("bob", None, lost)
    lost.allowed = False
    epoch = watcher.epoch()
    signal.value += 1
    await watcher.check()
    assert (kept.calls, lost.calls) == (1, 1)
    assert a.reason is None
    assert b.reason == ACCESS_REVOKED
    assert watcher.epoch() == epoch + 1
    assert watcher.open_streams == 1


async def test_an_iam_that_cannot_decide_ends_nothing_and_is_asked_again() -> None:
    watcher, signal, _ = make()
    await watcher.check()
    decider = Decider()
    decider.fails = Unavailable("IAM policy query failed: timed out")
    access = watcher.register("alice", None, decider)
    signal.value += 1
    await watcher.check()
    assert access.reason is None
    decider.fails, decider.allowed = None, False
    await watcher.check()  # no new change, but the failed decision is taken again
    assert access.reason == ACCESS_REVOKED


async def test_a_change_ends_the_streams_of_a_uid_that_no_longer_exists() -> None:
    """Whatever its grants say (a remote IAM's policy query may still allow a deleted uid):
    the uid check, cached on the same signal, is asked first."""
    known = {"alice", "bob"}
    asked: list[str] = []

    async def exists(uid: str) -> bool:
        asked.append(uid)
        return uid in known

    signal, clock = Signal(), Clock()
    watcher = AccessWatcher(signal, period=1.0, known=exists, clock=clock)
    await watcher.check()
    alice_grants, bob_grants = Decider(), Decider()
    alice = watcher.register("alice", None, alice_grants)
    bob = watcher.register("bob", None, bob_grants)
    known.discard("bob")
    await watcher.check()  # no change seen yet: nobody asked
    assert (asked, bob.reason) == ([], None)
    signal.value += 1
    await watcher.check()
    assert sorted(asked) == ["alice", "bob"]
    assert alice.reason is None
    assert alice_grants.calls == 1
    assert bob.reason == ACCESS_REVOKED
    assert bob_grants.calls == 0  # still allowed by its grants: never the question


async def test_a_uid_check_that_cannot_answer_ends_nothing() -> None:
    async def unavailable(uid: str) -> bool:
        raise Unavailable("IAM uid lookup failed: HTTP 500")

    signal = Signal()
    watcher = AccessWatcher(signal, period=1.0, known=unavailable, clock=Clock())
    await watcher.check()
    access = watcher.register("alice", None, Decider())
    signal.value += 1
    await watcher.check()
    assert access.reason is None


async def test_a_closed_stream_is_forgotten() -> None:
    watcher, signal, _ = make()
    decider = Decider()
    access = watcher.register("alice", None, decider)
    access.close()
    signal.value += 1
    await watcher.check()
    assert decider.calls == 0


async def test_run_wakes_at_the_nearest_expiry() -> None:
    watcher = AccessWatcher(Signal(), period=5.0)  # the real clock
    loop = asyncio.get_running_loop()
    started = loop.time()
    access = watcher.register("alice", time.time() + 0.2, Decider())
    task = asyncio.create_task(watcher.run())
    try:
        assert await asyncio.wait_for(access.ended(), 3) == TOKEN_EXPIRED
        assert loop.time() - started < 2.0  # not the 5 s period
    finally:
        task.cancel()


def test_a_ttl_signal_changes_once_per_ttl() -> None:
    now = [0.0]
    signal = TtlSignal(5.0, clock=lambda: now[0])
    first = signal.generation()
    now[0] = 4.9
    assert signal.generation() == first
    now[0] = 5.0
    assert signal.generation() != first
    with pytest.raises(ValueError, match="ttl"):
        TtlSignal(0)


def test_the_final_event_names_why() -> None:
    assert final_event(TOKEN_EXPIRED) == b"event: access-ended\ndata: token expired\n\n"


class CountingSignal(Signal):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def generation(self) -> int:
        self.reads += 1
        return self.value


async def test_streams_expiring_after_the_next_wake_do_not_wake_the_watcher() -> None:
    """A ramp of thousands of follows must not run a check of every stream per follow."""
    signal = CountingSignal()
    watcher = AccessWatcher(signal, period=5.0)  # the real clock
    task = asyncio.create_task(watcher.run())
    try:
        await asyncio.sleep(0)  # run() reads the signal once, then waits
        reads = signal.reads
        for _ in range(100):
            watcher.register("alice", time.time() + 60, Decider())
        for _ in range(3):
            await asyncio.sleep(0)
        assert signal.reads == reads
        soon = watcher.register("bob", time.time() + 0.2, Decider())  # nearer: wakes it
        assert await asyncio.wait_for(soon.ended(), 3) == TOKEN_EXPIRED
    finally:
        task.cancel()
