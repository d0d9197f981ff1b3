"""The merge itself, against a brute-force merge: ranges (k-way) and streams (reorderer)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest

from app.merge.entry import MergedEntry
from app.merge.window import Reorderer, merge_batches
from tests.merge.fakes import entry


def journals(seed: int, agents: int = 4, per_agent: int = 300) -> dict[str, list[MergedEntry]]:
    """Per agent, entries in journal order with mostly rising, sometimes equal or stepping
    back timestamps (clock adjustments happen)."""
    rng = random.Random(seed)
    out = {}
    for a in range(agents):
        agent = f"a{seed}-S{a}"
        ts, entries = 1_000_000, []
        for seq in range(per_agent):
            ts += rng.choice([0, 0, 1, 5, 50, 1000, -3])
            entries.append(entry(agent, seq, ts))
        out[agent] = entries
    return out


def brute_force(sources: dict[str, list[MergedEntry]]) -> list[MergedEntry]:
    """A k-way merge spelled out: repeatedly take the smallest head (ts, agent)."""
    heads = dict.fromkeys(sources, 0)
    out: list[MergedEntry] = []
    while True:
        live = [(sources[a][i].ts, a) for a, i in heads.items() if i < len(sources[a])]
        if not live:
            return out
        _, agent = min(live)
        out.append(sources[agent][heads[agent]])
        heads[agent] += 1


async def batched(
    entries: list[MergedEntry], rng: random.Random
) -> AsyncIterator[list[MergedEntry]]:
    i = 0
    while i < len(entries):
        n = rng.randint(0, 40)  # empty batches too
        yield entries[i : i + n]
        i += n


@pytest.mark.parametrize("seed", range(8))
async def test_range_merge_equals_brute_force(seed: int) -> None:
    sources = journals(seed)
    rng = random.Random(seed)
    got = [
        e
        async for batch in merge_batches([batched(sources[a], rng) for a in sorted(sources)])
        for e in batch
    ]
    assert got == brute_force(sources)
    for agent, entries in sources.items():  # each agent's journal order, whatever the clocks
        assert [e for e in got if e.agent == agent] == entries


async def test_ties_go_to_the_lower_agent_id() -> None:
    a = [entry("S1", 0, 5), entry("S1", 1, 5)]
    b = [entry("S0", 0, 5)]
    rng = random.Random(0)
    got = [e async for batch in merge_batches([batched(b, rng), batched(a, rng)]) for e in batch]
    assert [(e.agent, e.cursor) for e in got] == [(x.agent, x.cursor) for x in (b[0], *a)]


async def test_empty_sources() -> None:
    assert [b async for b in merge_batches([])] == []
    rng = random.Random(0)
    got = [
        e
        async for b in merge_batches([batched([], rng), batched([entry("S0", 0, 1)], rng)])
        for e in b
    ]
    assert len(got) == 1


def test_reorderer_releases_once_every_live_agent_has_something() -> None:
    r = Reorderer(window=0.25)
    for agent in ("S0", "S1"):
        r.add(agent)
    r.push("S0", [entry("S0", 0, 20, arrived=0.0), entry("S0", 1, 40, arrived=0.0)])
    assert r.pop_ready(now=0.1) == []  # S1 may still send something earlier
    assert r.deadline() == 0.25
    r.push("S1", [entry("S1", 0, 10, arrived=0.1)])
    got = r.pop_ready(now=0.1)
    # S1's 10 is safe (S0's next is 20); then S1 is dry and might still send 15, so S0's
    # entries wait for their window.
    assert [(e.agent, e.ts) for e in got] == [("S1", 10)]
    assert r.pop_ready(now=0.2) == []
    r.push("S1", [entry("S1", 1, 30, arrived=0.2)])
    assert [e.ts for e in r.pop_ready(now=0.2)] == [20, 30]  # S0 still holds 40
    assert r.pop_ready(now=0.2) == []
    assert [e.ts for e in r.pop_ready(now=0.25)] == [40]
    assert r.late == 0


def test_reorderer_window_bounds_the_wait_and_late_entries_are_kept() -> None:
    r = Reorderer(window=0.25)
    r.add("S0")
    r.add("S1")
    r.push("S0", [entry("S0", 0, 100, arrived=1.0)])
    assert [e.ts for e in r.pop_ready(now=1.25)] == [100]
    r.push("S1", [entry("S1", 0, 50, arrived=1.3)])  # older than what went out: late
    assert [e.ts for e in r.pop_ready(now=1.6)] == [50]
    assert r.late == 1


def test_reorderer_does_not_wait_for_unavailable_or_departed_agents() -> None:
    r = Reorderer(window=10.0)
    for agent in ("S0", "S1", "S2"):
        r.add(agent)
    r.push("S0", [entry("S0", 0, 1, arrived=0.0)])
    r.push("S2", [entry("S2", 0, 2, arrived=0.0), entry("S2", 1, 9, arrived=0.0)])
    assert r.pop_ready(now=0.0) == []
    r.set_live("S1", False)
    assert [e.ts for e in r.pop_ready(now=0.0)] == [1]  # S0 now dry: S2's next waits
    r.remove("S0")
    assert [e.ts for e in r.pop_ready(now=0.0)] == [2, 9]
    r.set_live("S1", True)
    r.push("S2", [entry("S2", 2, 10, arrived=0.0)])
    assert r.pop_ready(now=0.0) == []  # S1 is back: waited for again
    r.remove("S1")
    assert [e.ts for e in r.pop_ready(now=0.0)] == [10]
    r.push("S1", [entry("S1", 0, 11, arrived=0.0)])  # gone: ignored
    assert r.queued("S1") == 0


def test_a_departed_agents_queue_still_drains() -> None:
    r = Reorderer(window=10.0)
    r.add("S0")
    r.add("S1")
    r.push("S0", [entry("S0", 0, 1, arrived=0.0), entry("S0", 1, 3, arrived=0.0)])
    r.push("S1", [entry("S1", 0, 2, arrived=0.0)])
    r.remove("S0")
    assert [e.ts for e in r.pop_ready(now=0.0)] == [1, 2]  # then S1 is dry: 3 waits
    assert [e.ts for e in r.pop_ready(now=10.0)] == [3]
    r.add("S0")  # and it may come back
    r.push("S0", [entry("S0", 2, 4, arrived=10.0)])
    assert [e.ts for e in r.pop_ready(now=10.0)] == []  # S1 is live and dry
    assert [e.ts for e in r.pop_ready(now=20.0)] == [4]


@pytest.mark.parametrize("seed", range(5))
def test_reorderer_with_all_agents_busy_equals_brute_force(seed: int) -> None:
    """Fed in random slices, with every agent streaming, the output is the k-way merge."""
    sources = journals(seed, per_agent=200)
    rng = random.Random(seed)
    r = Reorderer(window=1e9)  # never released by the window: only the safe rule applies
    for agent in sources:
        r.add(agent)
    cursors = dict.fromkeys(sources, 0)
    out: list[MergedEntry] = []
    while any(cursors[a] < len(sources[a]) for a in sources):
        agent = rng.choice(sorted(sources))
        i = cursors[agent]
        n = rng.randint(1, 30)
        r.push(agent, sources[agent][i : i + n])
        cursors[agent] = min(i + n, len(sources[agent]))
        if cursors[agent] == len(sources[agent]):
            r.remove(agent)  # a finished agent stops being waited for
        out += r.pop_ready(now=0.0)
    out += r.pop_ready(now=0.0)
    assert out == brute_force(sources)
