"""`MesosClient` against real simulated masters on 127.0.0.2-4 (three of them, 0 leading)."""

from __future__ import annotations

import threading
from dataclasses import replace

import httpx
import orjson
import pytest

from app.cluster import ClusterSettings, MesosClient, MesosError
from app.cluster import index as index_module
from app.devcluster.mesos import MesosSimulator

STATE = "/master/state"
REDIRECT = "/master/redirect"


async def test_first_poll_finds_the_leader_through_master_redirect(
    sim: MesosSimulator, settings: ClusterSettings, client: httpx.AsyncClient
) -> None:
    sim.fail_over(2)
    mesos = MesosClient(settings, client)
    snapshot = await mesos.fetch()
    assert mesos.leader_url == sim.urls[2]
    assert snapshot.leader.ip == "127.0.0.4"
    assert snapshot.leader.reader_url == "http://127.0.0.4:61001"
    # Master 0 pointed at the leader; only the leader was asked for its state.
    assert sim.count(REDIRECT, master=0) == 1
    assert sim.count(STATE) == sim.count(STATE, master=2) == 1
    await mesos.fetch()
    assert sim.count(REDIRECT) == 1  # later polls go straight to the known leader
    assert sim.count(STATE, master=2) == 2


async def test_a_non_leaders_307_on_state_is_followed_after_failover(
    sim: MesosSimulator, settings: ClusterSettings, client: httpx.AsyncClient
) -> None:
    mesos = MesosClient(settings, client)
    first = await mesos.fetch()
    assert mesos.leader_url == sim.urls[0]
    sim.fail_over(1)
    sim.reset_requests()
    second = await mesos.fetch()
    assert mesos.leader_url == sim.urls[1]
    assert (first.leader.ip, second.leader.ip) == ("127.0.0.2", "127.0.0.3")
    # One 307 from the old leader, one state from the new: no rediscovery needed.
    assert [(r.master, r.path) for r in sim.requests()] == [(0, STATE), (1, STATE)]


async def test_no_leader_elected_is_a_failure_naming_it(
    sim: MesosSimulator, settings: ClusterSettings, client: httpx.AsyncClient
) -> None:
    sim.fail_over(None)
    with pytest.raises(MesosError, match="no leader elected") as raised:
        await MesosClient(settings, client).fetch()
    for url in sim.urls:  # every master was asked, each said "no leader"
        assert f"{url}/master/redirect: no leader elected" in str(raised.value)
    assert sim.count(STATE) == 0


async def test_unreachable_masters_are_skipped(
    sim: MesosSimulator, settings: ClusterSettings, client: httpx.AsyncClient
) -> None:
    sim.fail_over(2)
    sim.stop_master(0)
    mesos = MesosClient(settings, client)
    snapshot = await mesos.fetch()
    assert snapshot.leader.ip == "127.0.0.4"
    sim.stop_master(2)
    with pytest.raises(MesosError, match="cannot reach the master"):
        await mesos.fetch()
    sim.start_master(2)
    assert (await mesos.fetch()).leader.ip == "127.0.0.4"


async def test_headers_user_agent_and_service_token(
    sim: MesosSimulator, settings: ClusterSettings, client: httpx.AsyncClient
) -> None:
    async def token() -> str:
        return "svc-token"

    mesos = MesosClient(replace(settings, service_token=token), client)
    await mesos.fetch()
    seen = sim.requests()
    assert seen
    assert {r.user_agent for r in seen} == {"Logway gateway"}
    assert {r.authorization for r in seen} == {"token=REDACTED"}
    await MesosClient(settings, client).fetch()
    assert sim.requests()[-1].authorization is None


async def test_a_failing_token_provider_fails_the_poll_without_quoting_it(
    sim: MesosSimulator, settings: ClusterSettings, client: httpx.AsyncClient
) -> None:
    def broken() -> str:
        raise RuntimeError("secret-material")

    with pytest.raises(MesosError, match="no service token") as raised:
        await MesosClient(replace(settings, service_token=broken), client).fetch()
    assert "secret-material" not in str(raised.value)


async def test_garbage_json_is_a_failure(
    sim: MesosSimulator, settings: ClusterSettings, client: httpx.AsyncClient
) -> None:
    sim.garbage()
    with pytest.raises(MesosError, match="not JSON"):
        await MesosClient(settings, client).fetch()


async def test_http_errors_and_timeouts(
    sim: MesosSimulator, settings: ClusterSettings, client: httpx.AsyncClient
) -> None:
    mesos = MesosClient(replace(settings, masters=(sim.urls[0],), request_timeout=0.3), client)
    await mesos.fetch()
    sim.fail(500)
    with pytest.raises(MesosError, match="HTTP 500"):
        await mesos.fetch()
    sim.stall(5)
    with pytest.raises(MesosError, match=r"timed out after 0\.3 s"):
        await mesos.fetch()
    sim.heal()
    await mesos.fetch()


async def test_parsing_runs_off_the_event_loop(
    sim: MesosSimulator,
    settings: ClusterSettings,
    client: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: list[threading.Thread] = []
    real_loads = orjson.loads
    real_build = index_module._Builder.build

    def loads(data: bytes | str) -> object:
        threads.append(threading.current_thread())
        return real_loads(data)

    def build(self: index_module._Builder, state: dict[str, object]) -> object:
        threads.append(threading.current_thread())
        return real_build(self, state)  # type: ignore[arg-type]

    monkeypatch.setattr(index_module.orjson, "loads", loads)
    monkeypatch.setattr(index_module._Builder, "build", build)
    await MesosClient(settings, client).fetch()
    assert len(threads) == 2
    assert all(t is not threading.main_thread() for t in threads)


async def test_a_captured_state_served_verbatim_indexes_like_the_file(
    client: httpx.AsyncClient,
) -> None:
    from tests.cluster.support import fixture_path

    with MesosSimulator(fixture_path(), masters=[("127.0.0.5", 0)]) as fixture_sim:
        settings = ClusterSettings(masters=tuple(fixture_sim.urls), request_timeout=2)
        snapshot = await MesosClient(settings, client).fetch()
    assert snapshot.leader.ip == "10.0.4.125"  # the captured leader, not the simulator
    assert snapshot.agents["db10f9b1-5b82-4187-aa47-4fbcefc7cdca-S0"].ip == "10.0.6.133"


async def test_https_is_never_redirected_to_http() -> None:
    from app.cluster.mesos import _join

    assert _join("https://m1:5050", "//m2:5050/master/state") == "https://m2:5050"
    with pytest.raises(MesosError, match="refusing"):
        _join("https://m1:5050", "http://m2:5050")
    with pytest.raises(MesosError, match="bad redirect"):
        _join("http://m1:5050", "file:///etc/passwd")
