"""`ClusterState` against simulated masters: Admin Router's cache cases (reference §6.2,
27-38) and the resolver's single-flight, rate-limited refreshes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import httpx
import pytest

from app.cluster import Ambiguous, ClusterSettings, ClusterState, InvalidId, MesosClient
from app.core.errors import NotFound, Unavailable
from app.devcluster.mesos import MesosSimulator, SimAgent, SimCluster, SimTask
from tests.support.wait import wait_for_async

STATE = "/master/state"
UNKNOWN = "bdcd424a-b59e-4df4-b492-b54e38926bd8-S0"


MakeState = Callable[..., Awaitable[ClusterState]]


class Clock:
    """Real monotonic time plus what a test skipped with `advance()`: the snapshot ages and
    the refresh spacing jump ahead without sleeping, while the poller's own waits stay real."""

    def __init__(self) -> None:
        self.skipped = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.skipped

    def advance(self, seconds: float) -> None:
        self.skipped += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def make_state(
    client: httpx.AsyncClient, settings: ClusterSettings, clock: Clock
) -> AsyncIterator[MakeState]:
    """`await make_state(**settings)`: a started `ClusterState` (`start=False`: not started)."""
    made: list[ClusterState] = []

    async def make(*, start: bool = True, **overrides: float) -> ClusterState:
        configured = replace(settings, **overrides)
        state = ClusterState(configured, MesosClient(configured, client), clock=clock)
        made.append(state)
        if start:
            await state.start()
        return state

    yield make
    for state in made:
        await state.close()


async def eventually(check: Callable[[], bool], timeout: float = 3.0) -> None:
    await wait_for_async("the condition", lambda: check() or None, timeout=timeout, step=0.02)


# Admin Router cache cases ---------------------------------------------------------------


async def test_first_request_before_any_poll_refreshes_once(
    sim: MesosSimulator, make_state: MakeState
) -> None:
    state = await make_state(start=False)  # as AR case 29: the first poll far away
    first = await state.snapshot()
    assert sim.count(STATE) == 1
    assert await state.snapshot() is first
    assert sim.count(STATE) == 1


async def test_requests_during_the_first_poll_join_it(
    sim: MesosSimulator, make_state: MakeState
) -> None:
    state = await make_state()
    snapshots = await asyncio.gather(*(state.snapshot() for _ in range(20)))
    assert len({id(s) for s in snapshots}) == 1
    assert sim.count(STATE) == 1


async def test_the_poller_refreshes_every_period(
    sim: MesosSimulator, make_state: MakeState
) -> None:
    state = await make_state(poll_period=0.05)
    await eventually(lambda: sim.count(STATE) >= 3)
    await state.close()
    polls = sim.count(STATE)
    await asyncio.sleep(0.15)  # three periods: no event to await for "nothing happens"
    assert sim.count(STATE) == polls  # closed: no more polls


async def test_mesos_down_after_a_good_poll_stale_then_too_old_then_healed(
    sim: MesosSimulator,
    make_state: MakeState,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    state = await make_state(poll_period=0.1, soft_limit=0.4, hard_limit=0.8)
    good = await state.snapshot()
    sim.fail(500)
    await state.refresh()  # a failed poll keeps the last snapshot
    clock.advance(0.5)
    with caplog.at_level(logging.WARNING, logger="app.cluster.state"):
        assert await state.snapshot() is good  # kept, and used past the soft limit
    assert "cluster state is stale" in caplog.text
    assert "HTTP 500" in caplog.text
    clock.advance(0.4)
    with pytest.raises(Unavailable, match=r"cluster state is too old \(\d+ s\): .*HTTP 500"):
        await state.snapshot()
    sim.heal()
    await eventually(lambda: state.age() is not None and state.age() < 0.4)  # type: ignore[operator]
    assert (await state.snapshot()) is not good
    assert state.last_error is None


async def test_mesos_down_from_the_start_then_healed(
    sim: MesosSimulator, make_state: MakeState
) -> None:
    sim.fail(500)
    state = await make_state(poll_period=0.2)
    with pytest.raises(Unavailable, match=r"cluster state not loaded yet: .*HTTP 500"):
        await state.snapshot()
    with pytest.raises(Unavailable, match="not loaded yet"):
        await state.snapshot()
    sim.heal()
    await eventually(lambda: state.age() is not None)
    assert (await state.snapshot()).agents


async def test_no_leader_is_named_in_the_503(sim: MesosSimulator, make_state: MakeState) -> None:
    sim.fail_over(None)
    with pytest.raises(Unavailable, match="no leader elected"):
        await (await make_state()).snapshot()


async def test_garbage_from_mesos_keeps_the_old_snapshot(
    sim: MesosSimulator, make_state: MakeState
) -> None:
    state = await make_state()
    good = await state.snapshot()
    sim.garbage()
    await state.refresh()
    assert "not JSON" in (state.last_error or "")
    assert await state.snapshot() is good


async def test_the_next_poll_follows_a_failover(sim: MesosSimulator, make_state: MakeState) -> None:
    state = await make_state(poll_period=0.1)
    assert (await state.resolve_leader()).ip == "127.0.0.2"
    sim.fail_over(1)
    await eventually(lambda: sim.count(STATE, master=1) >= 1)
    await eventually(lambda: state.age() is not None and state.age() < 0.1)  # type: ignore[operator]
    leader = await state.resolve_leader()
    assert (leader.ip, leader.reader_url) == ("127.0.0.3", "http://127.0.0.3:61001")


async def test_a_stalled_mesos_does_not_block_requests_with_a_snapshot(
    sim: MesosSimulator, make_state: MakeState, cluster: SimCluster
) -> None:
    state = await make_state(request_timeout=5.0)
    await state.snapshot()
    sim.stall(3.0)
    pending = asyncio.create_task(state.resolve_agent(UNKNOWN))  # starts a refresh that stalls
    await eventually(lambda: sim.count(STATE) == 2)
    agent = await asyncio.wait_for(state.resolve_agent(cluster.agents[0].id), 0.2)
    assert agent.ip == "10.0.0.1"
    sim.heal()
    with pytest.raises(NotFound):
        await pending


# Resolving agents -------------------------------------------------------------------------


async def test_resolve_agent_from_pid(
    sim: MesosSimulator, make_state: MakeState, cluster: SimCluster
) -> None:
    agent = await (await make_state(reader_port=7000)).resolve_agent(cluster.agents[1].id)
    assert (agent.ip, agent.port, agent.reader_url) == ("10.0.0.2", 5051, "http://10.0.0.2:7000")


async def test_an_agent_added_at_run_time_costs_exactly_one_refresh(
    sim: MesosSimulator, make_state: MakeState
) -> None:
    state = await make_state()
    await state.snapshot()
    sim.reset_requests()
    sim.add_agent(SimAgent(UNKNOWN, "127.0.0.9", port=15003))
    agent = await state.resolve_agent(UNKNOWN)
    assert (agent.ip, agent.port, agent.reader_url) == (
        "127.0.0.9",
        15003,
        "http://127.0.0.9:61001",
    )
    assert sim.count(STATE) == 1
    await state.resolve_agent(UNKNOWN)
    assert sim.count(STATE) == 1  # known now: served from the snapshot


async def test_a_burst_of_unknown_agent_lookups_is_one_refresh(
    sim: MesosSimulator, make_state: MakeState
) -> None:
    state = await make_state()
    await state.snapshot()
    sim.reset_requests()
    results = await asyncio.gather(
        *(state.resolve_agent(UNKNOWN) for _ in range(50)), return_exceptions=True
    )
    assert all(isinstance(r, NotFound) for r in results)
    assert sim.count(STATE) == 1


async def test_the_refresh_rate_limit_holds(
    sim: MesosSimulator, make_state: MakeState, clock: Clock
) -> None:
    state = await make_state(refresh_min_interval=0.4)
    await state.snapshot()
    sim.reset_requests()
    with pytest.raises(NotFound, match=f"agent `{UNKNOWN}` unknown"):
        await state.resolve_agent(UNKNOWN)  # one refresh, still unknown
    assert sim.count(STATE) == 1
    sim.add_agent(SimAgent(UNKNOWN, "127.0.0.9"))
    for _ in range(5):
        with pytest.raises(NotFound):
            await state.resolve_agent(UNKNOWN)  # within the interval: no refresh
    assert sim.count(STATE) == 1
    clock.advance(0.45)
    assert (await state.resolve_agent(UNKNOWN)).ip == "127.0.0.9"
    assert sim.count(STATE) == 2


async def test_malformed_agent_ids_are_404_without_any_request(
    sim: MesosSimulator, make_state: MakeState
) -> None:
    state = await make_state(start=False)
    for agent_id in ("", "../etc", "a b", "a_b", "S0/..", "S0\n", "x" * 257):
        with pytest.raises(InvalidId) as raised:
            await state.resolve_agent(agent_id)
        assert raised.value.status == 404
    assert sim.count() == 0


async def test_an_unknown_agent_without_a_usable_state_is_503(
    sim: MesosSimulator, make_state: MakeState
) -> None:
    sim.fail(503)
    with pytest.raises(Unavailable):
        await (await make_state()).resolve_agent(UNKNOWN)


# Finding tasks ------------------------------------------------------------------------------


async def test_find_task_by_id_name_and_fragment(
    sim: MesosSimulator, make_state: MakeState, cluster: SimCluster
) -> None:
    state = await make_state()
    sleeper = next(t for t in cluster.tasks if t.name == "sleeper")
    by_id = await state.find_task(sleeper.id)
    assert (by_id.id, by_id.app_id, by_id.executor_id) == (sleeper.id, "/sleeper", sleeper.id)
    web = await state.find_task("web")
    assert web.executor_id.startswith("instance-dev_pod.")
    assert web.app_id == "/dev/pod"
    assert (await state.find_task(sleeper.id[:20])).id == sleeper.id
    assert (await state.find_task("twin-2")).name == "twin"
    nightly = await state.find_task("nightly")  # only a completed task matches
    assert nightly.completed


async def test_find_task_ambiguous_is_409_listing_the_candidates(
    sim: MesosSimulator, make_state: MakeState
) -> None:
    with pytest.raises(Ambiguous) as raised:
        await (await make_state()).find_task("twin")
    assert raised.value.status == 409
    assert raised.value.candidates == ("twin-1", "twin-2")
    assert str(raised.value) == "found more than 1 task matching `twin`: twin-1, twin-2"
    assert sim.count(STATE) == 1  # ambiguity is an answer: no refresh


async def test_find_task_unknown_refreshes_once_then_404(
    sim: MesosSimulator, make_state: MakeState, cluster: SimCluster
) -> None:
    state = await make_state()
    await state.snapshot()
    with pytest.raises(NotFound, match="task `late` not found"):
        await state.find_task("late")
    assert sim.count(STATE) == 2
    later = await make_state()
    await later.snapshot()
    marathon = cluster.frameworks[0].id
    sim.add_task(SimTask(f"late.{'0' * 8}", "late", marathon, cluster.agents[0].id))
    assert (await later.find_task("late")).app_id == "/late"
    assert sim.count(STATE) == 4


async def test_find_task_rejects_empty_and_huge_queries(
    sim: MesosSimulator, make_state: MakeState
) -> None:
    state = await make_state(start=False)
    for query in ("", "x" * 1025):
        with pytest.raises(InvalidId):
            await state.find_task(query)
    assert sim.count() == 0
