"""Fault tests, Mesos side: a real `logway gateway` over simulated masters that fail over,
fail, stall, answer garbage and gain agents at run time, with real node readers behind it
(Admin Router's cache cases 27-38, reference §3.3 and §6.2)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from app.devcluster.mesos import MesosSimulator, SimAgent
from tests.conftest import journald_available
from tests.gateway.support import (
    FAULT_AGENTS,
    FAULT_HOSTS,
    FAULT_MASTER_ID,
    MARKED,
    FaultCluster,
    answered_by,
    fault_cluster,
    listener_pid,
)
from tests.support.wait import wait_for

pytestmark = pytest.mark.skipif(
    not journald_available(), reason="needs root and /lib/systemd/systemd-journald"
)

POLL = 0.25
STATE = "/master/state"
LEADER = f"/system/v1/leader/mesos/logs{MARKED}"
NEW_AGENT = f"{FAULT_MASTER_ID}-S2"
BURST = 50


def agent_route(agent_id: str) -> str:
    return f"/system/v1/agent/{agent_id}/logs{MARKED}"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultCluster]:
    with fault_cluster(tmp_path_factory.mktemp("faults-mesos")) as built:
        yield built


@pytest.fixture(autouse=True)
def restored(cluster: FaultCluster) -> Iterator[None]:
    yield
    cluster.restore()


def get(gateway: str, path: str, cluster: FaultCluster) -> httpx.Response:
    return httpx.get(gateway + path, headers=cluster.admin, timeout=15)


def answers(
    gateway: str, path: str, cluster: FaultCluster, status: int = 200
) -> Callable[[], bool | None]:
    """For `wait_for`: the route answers `status`."""
    return lambda: get(gateway, path, cluster).status_code == status or None


def test_failover_moves_the_leader_route_while_agent_routes_keep_working(
    cluster: FaultCluster,
) -> None:
    sim = cluster.sim
    with cluster.gateway(poll_period=POLL) as gateway:
        pid = listener_pid(gateway)

        def leader_host() -> str:
            for agent, host in zip(FAULT_AGENTS, FAULT_HOSTS, strict=True):
                assert answered_by(get(gateway, agent_route(agent), cluster)) == host
            return answered_by(get(gateway, LEADER, cluster))

        def leader_is(host: str) -> Callable[[], bool | None]:
            return lambda: leader_host() == host or None

        assert leader_host() == FAULT_HOSTS[0]
        redirects = sim.count("/master/redirect")
        sim.fail_over(1)  # master 0 now answers 307 to master 1
        wait_for("the leader route to reach master 1's reader", leader_is(FAULT_HOSTS[1]))
        # The gateway followed master 0's 307; it did not need to look for the leader.
        assert sim.count("/master/redirect") == redirects
        # Once it knows the new leader, it asks only that one (AR case 36).
        asked_old, asked_new = sim.count(STATE, master=0), sim.count(STATE, master=1)
        wait_for("three polls of master 1", lambda: sim.count(STATE, 1) >= asked_new + 3 or None)
        assert sim.count(STATE, master=0) == asked_old

        # Back to master 0, and master 1 is gone: found again through /master/redirect.
        sim.fail_over(0)
        sim.stop_master(1)
        wait_for("the leader route to reach master 0's reader", leader_is(FAULT_HOSTS[0]))
        assert sim.count("/master/redirect", master=0) > redirects
        assert listener_pid(gateway) == pid  # the same process throughout


# fault name -> (how the masters misbehave, what the 503 must name as the cause)
FAULTS: dict[str, tuple[Callable[[MesosSimulator], None], str]] = {
    "503": (lambda sim: sim.fail(503), "no leader elected"),
    "timeout": (lambda sim: sim.stall(120), "timed out"),
    # A byte every 0.1 s: no read waits long enough to time out; the whole exchange must.
    "trickle": (lambda sim: sim.trickle(0.1), "timed out"),
    "garbage": (lambda sim: sim.garbage(), "bad state"),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_failing_mesos_the_last_state_serves_until_the_hard_limit_then_503_until_healed(
    cluster: FaultCluster, fault: str
) -> None:
    """AR cases 30 and 31, and back to 200 without a restart."""
    sim = cluster.sim
    misbehave, cause = FAULTS[fault]
    path = agent_route(FAULT_AGENTS[0])
    timings = {"poll_period": POLL, "soft_limit": 0.5, "hard_limit": 5.0, "request_timeout": 0.5}
    with cluster.gateway(masters=sim.urls[:1], **timings) as gateway:
        pid = listener_pid(gateway)
        wait_for("a first state", answers(gateway, path, cluster))
        misbehave(sim)
        asked = sim.count(STATE)
        # The poller asks again only once a poll is over: the first failed poll is behind us.
        wait_for("a failed poll", lambda: sim.count(STATE) >= asked + 2 or None)
        assert answered_by(get(gateway, path, cluster)) == FAULT_HOSTS[0]  # stale, usable

        def refused() -> httpx.Response | None:
            response = get(gateway, path, cluster)
            assert response.status_code in (200, 503), response.text
            return response if response.status_code == 503 else None

        too_old = wait_for("the hard limit", refused, timeout=30, step=0.2)
        assert "cluster state is too old" in too_old.text, too_old.text
        assert cause in too_old.text, too_old.text
        assert sim.urls[0] in too_old.text  # which master failed

        sim.heal()
        wait_for("a good poll", answers(gateway, path, cluster))
        assert answered_by(get(gateway, path, cluster)) == FAULT_HOSTS[0]
        assert listener_pid(gateway) == pid  # healed without a restart


def test_mesos_failing_from_the_start_503_until_it_heals(cluster: FaultCluster) -> None:
    """AR case 34 (Mesos borked from start-up: 503, 503, heal, 200)."""
    sim = cluster.sim
    sim.fail(500, master=0)
    path = agent_route(FAULT_AGENTS[1])
    with cluster.gateway(masters=sim.urls[:1], poll_period=POLL) as gateway:
        for _ in range(2):
            response = get(gateway, path, cluster)
            assert response.status_code == 503, response.text
            assert "cluster state not loaded yet" in response.text, response.text
            assert "HTTP 500" in response.text, response.text
        sim.heal()
        wait_for("a first good poll", answers(gateway, path, cluster))
        assert answered_by(get(gateway, path, cluster)) == FAULT_HOSTS[1]


def test_an_agent_added_at_run_time_is_found_by_the_refresh_its_request_starts(
    cluster: FaultCluster,
) -> None:
    sim = cluster.sim
    path = agent_route(NEW_AGENT)
    # No poll during the test: only requests for the unknown agent can refresh the state.
    with cluster.gateway(poll_period=600, refresh_min_interval=1.0) as gateway:
        wait_for("a first state", answers(gateway, agent_route(FAULT_AGENTS[0]), cluster))
        unknown = get(gateway, path, cluster)
        assert unknown.status_code == 404
        assert unknown.text == f"agent `{NEW_AGENT}` unknown\n"
        asked = sim.count(STATE)
        cluster.add_agent(SimAgent(NEW_AGENT, FAULT_HOSTS[1]))
        wait_for("the new agent", answers(gateway, path, cluster))
        assert answered_by(get(gateway, path, cluster)) == FAULT_HOSTS[1]
        assert sim.count(STATE) > asked


def test_an_agent_added_or_removed_at_run_time_is_seen_by_the_next_poll(
    cluster: FaultCluster,
) -> None:
    path = agent_route(NEW_AGENT)
    # Requests may refresh the state once in 10 minutes: only the poller can find it.
    with cluster.gateway(poll_period=POLL, refresh_min_interval=600) as gateway:
        assert get(gateway, path, cluster).status_code == 404
        cluster.add_agent(SimAgent(NEW_AGENT, FAULT_HOSTS[0]))
        wait_for("the new agent", answers(gateway, path, cluster))
        assert answered_by(get(gateway, path, cluster)) == FAULT_HOSTS[0]
        cluster.sim.remove_agent(NEW_AGENT)
        wait_for("the agent gone", answers(gateway, path, cluster, 404))


@pytest.mark.parametrize("mesos", ["fast", "slow"])
def test_a_burst_for_an_unknown_agent_asks_mesos_at_most_twice(
    cluster: FaultCluster, mesos: str
) -> None:
    """Fast: the first request refreshes, the rest are within the rate limit. Slow (Mesos
    takes a second): the burst waits on that one refresh (single flight)."""
    sim = cluster.sim
    unknown = agent_route(f"{FAULT_MASTER_ID}-S99")
    with cluster.gateway(poll_period=600) as gateway:
        wait_for("a first state", answers(gateway, agent_route(FAULT_AGENTS[0]), cluster))
        if mesos == "slow":
            sim.stall(1.0)
        asked = sim.count(STATE)

        async def burst() -> list[int]:
            limits = httpx.Limits(max_connections=BURST)
            async with httpx.AsyncClient(headers=cluster.admin, timeout=30, limits=limits) as c:
                got = await asyncio.gather(*(c.get(gateway + unknown) for _ in range(BURST)))
            return [response.status_code for response in got]

        assert asyncio.run(burst()) == [404] * BURST
        assert 1 <= sim.count(STATE) - asked <= 2


def test_a_stalled_mesos_costs_an_unknown_id_refresh_wait_then_503_and_known_ids_stay_fast(
    cluster: FaultCluster,
) -> None:
    """Issue 12 §4: with the master stalled, a request for an unknown agent waits for the
    refresh it joins at most `mesos_refresh_wait`, then 503 with Retry-After; the refresh goes
    on (later requests join it, Mesos is not asked again) and known agents answer at once."""
    sim = cluster.sim
    unknown = agent_route(f"{FAULT_MASTER_ID}-S98")
    known = agent_route(FAULT_AGENTS[0])
    timings = {"poll_period": 600, "request_timeout": 60, "refresh_wait": 1.0}
    with cluster.gateway(masters=sim.urls[:1], **timings) as gateway:
        wait_for("a first state", answers(gateway, known, cluster))
        sim.stall(60)
        asked = sim.count(STATE)
        for _ in range(2):
            started = time.monotonic()
            r = get(gateway, unknown, cluster)
            assert r.status_code == 503, r.text
            assert r.headers["retry-after"] == "1"
            assert "mesos_refresh_wait" in r.text
            assert time.monotonic() - started < 4
        assert sim.count(STATE) == asked + 1  # one refresh, still under way, joined twice
        started = time.monotonic()
        assert answered_by(get(gateway, known, cluster)) == FAULT_HOSTS[0]
        assert time.monotonic() - started < 1
        sim.heal()
