"""The Mesos master simulator over real loopback HTTP: shapes, leadership, faults, controls."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from app.cluster import build_snapshot
from app.devcluster.mesos import Fault, MesosSimulator, SimAgent, SimCluster, SimTask
from tests.cluster.support import fixture_path
from tests.conftest import free_port
from tests.support.servers import stop, wait_http
from tests.support.wait import wait_for


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as client:
        yield client


def test_state_is_a_leading_masters_state(
    sim: MesosSimulator, cluster: SimCluster, http: httpx.Client
) -> None:
    response = http.get(f"{sim.urls[0]}/master/state")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    state = response.json()
    assert state["pid"] == state["leader"] == "master@127.0.0.2:" + sim.urls[0].rsplit(":", 1)[1]
    assert state["leader_info"]["hostname"] == "127.0.0.2"
    assert state["activated_slaves"] == 2
    for alias in ("/state", "/master/state.json", "/state.json"):
        assert http.get(sim.urls[0] + alias).json() == state
    snapshot = build_snapshot(response.content, reader_scheme="http", reader_port=61001)
    assert set(snapshot.agents) == {a.id for a in cluster.agents}
    web = snapshot.tasks_named("web")[0]
    sim_web = next(t for t in cluster.tasks if t.name == "web")
    assert web.container_chain == sim_web.containers
    assert web.executor_id == sim_web.executor_id
    assert web.app_id == "/dev/pod"
    assert snapshot.tasks_named("nightly")[0].completed


def test_state_summary_shape(sim: MesosSimulator, cluster: SimCluster, http: httpx.Client) -> None:
    summary = http.get(f"{sim.urls[0]}/master/state-summary").json()
    assert set(summary) == {"hostname", "cluster", "slaves", "frameworks"}
    assert summary["cluster"] == "logway-dev"
    first = summary["slaves"][0]
    assert first["pid"] == "slave(1)@10.0.0.1:5051"
    assert first["TASK_RUNNING"] == 3
    assert first["framework_ids"] == [cluster.frameworks[0].id]
    assert "tasks" not in summary["frameworks"][0]
    assert summary["frameworks"][0]["slave_ids"] == sorted(a.id for a in cluster.agents)


def test_tasks_endpoint(sim: MesosSimulator, cluster: SimCluster, http: httpx.Client) -> None:
    base = f"{sim.urls[0]}/master/tasks"
    everything = http.get(base).json()["tasks"]
    assert len(everything) == len(cluster.tasks)
    started = [t["statuses"][0]["timestamp"] for t in everything]
    assert started == sorted(started, reverse=True)  # desc by default
    ascending = http.get(base, params={"order": "asc"}).json()["tasks"]
    assert [t["id"] for t in ascending] == [t["id"] for t in reversed(everything)]
    page = http.get(base, params={"limit": 2, "offset": 1}).json()["tasks"]
    assert [t["id"] for t in page] == [t["id"] for t in everything[1:3]]
    metronome = cluster.frameworks[1].id
    assert len(http.get(base, params={"framework_id": metronome}).json()["tasks"]) == 1
    assert http.get(base, params={"task_id": "twin-2"}).json()["tasks"][0]["name"] == "twin"
    for bad in ({"limit": "x"}, {"order": "up"}, {"offset": -1}):
        assert http.get(base, params=bad).status_code == 400
    sim.add_task(SimTask("extra.1", "extra", cluster.frameworks[0].id, cluster.agents[0].id))
    assert len(http.get(base, params={"limit": 100}).json()["tasks"]) == len(cluster.tasks) + 1


def test_leadership_redirects(sim: MesosSimulator, http: httpx.Client) -> None:
    leader_host = sim.urls[0].removeprefix("http:")
    redirect = http.get(f"{sim.urls[1]}/master/redirect")
    assert (redirect.status_code, redirect.headers["location"]) == (307, leader_host)
    assert http.get(f"{sim.urls[0]}/master/redirect").headers["location"] == leader_host
    follower = http.get(f"{sim.urls[1]}/master/state-summary?x=1")
    assert follower.status_code == 307
    assert follower.headers["location"] == f"{leader_host}/master/state-summary?x=1"
    sim.fail_over(1)
    assert http.get(f"{sim.urls[0]}/master/state").headers["location"] == (
        f"{sim.urls[1].removeprefix('http:')}/master/state"
    )
    assert http.get(f"{sim.urls[1]}/master/state").json()["hostname"] == "127.0.0.3"
    sim.fail_over(None)
    for url in sim.urls:
        for path in ("/master/redirect", "/master/state"):
            response = http.get(url + path)
            assert (response.status_code, response.text) == (503, "No leader elected")


def test_agent_state(sim: MesosSimulator, cluster: SimCluster, http: httpx.Client) -> None:
    agent = cluster.agents[0]
    state = http.get(f"{sim.urls[1]}/slave/{agent.id}/slave(1)/state").json()
    assert (state["id"], state["pid"]) == (agent.id, "slave(1)@10.0.0.1:5051")
    (marathon,) = state["frameworks"]
    executors = {e["id"]: e for e in marathon["executors"]}
    pod = next(t for t in cluster.tasks if t.name == "web")
    assert executors[pod.executor_id]["container"] == pod.containers[0]
    assert sorted(t["name"] for t in executors[pod.executor_id]["tasks"]) == ["sidecar", "web"]
    sleeper = next(t for t in cluster.tasks if t.name == "sleeper")
    assert executors[sleeper.id]["tasks"][0]["id"] == sleeper.id  # command executor: task id
    for alias in ("/state", "/state.json", "/slave(1)/state.json"):
        assert http.get(f"{sim.urls[0]}/slave/{agent.id}{alias}").json() == state
    other = http.get(f"{sim.urls[0]}/slave/{cluster.agents[1].id}/state").json()
    metronome = next(f for f in other["frameworks"] if f["name"] == "metronome")
    (nightly,) = metronome["executors"][0]["completed_tasks"]
    assert nightly["name"] == "nightly"
    assert http.get(f"{sim.urls[0]}/slave/nope/state").status_code == 404


def test_fixture_is_served_verbatim_until_changed(http: httpx.Client) -> None:
    path = fixture_path()
    with MesosSimulator(path, masters=[("127.0.0.5", 0)]) as sim:
        assert not sim.remove_agent("no-such-agent")  # no change: still verbatim
        assert not sim.remove_task("no-such-task")
        assert http.get(f"{sim.urls[0]}/master/state").content == path.read_bytes()
        summary = http.get(f"{sim.urls[0]}/master/state-summary").json()
        assert {s["id"][-2:] for s in summary["slaves"]} == {"S0", "S1"}
        sim.add_agent(SimAgent("db10f9b1-5b82-4187-aa47-4fbcefc7cdca-S7", "10.0.9.9"))
        changed = http.get(f"{sim.urls[0]}/master/state").json()
        assert [s["id"][-2:] for s in changed["slaves"]] == ["S1", "S0", "S7"]
        assert changed["leader"] == "master@10.0.4.125:5050"  # the captured leader is kept
        assert sim.remove_task("test123-123")
        assert not sim.remove_task("test123-123")


def test_faults_per_master(sim: MesosSimulator, http: httpx.Client) -> None:
    state = f"{sim.urls[0]}/master/state"
    sim.fail(500, master=0)
    assert http.get(state).status_code == 500
    assert http.get(f"{sim.urls[1]}/master/state").status_code == 307  # master 1 unaffected
    sim.set_fault(Fault("status", status=502, body="bad gateway"))
    assert (http.get(state).status_code, http.get(state).text) == (502, "bad gateway")
    sim.garbage()
    garbage = http.get(state)
    assert garbage.status_code == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(garbage.content)
    sim.stall(0.3)
    began = time.monotonic()
    assert http.get(state).status_code == 200  # a stall delays, then answers
    assert time.monotonic() - began >= 0.25
    sim.heal()
    assert http.get(state).status_code == 200


def test_a_stall_ends_when_healed(sim: MesosSimulator) -> None:
    sim.stall(30)
    with httpx.Client(timeout=0.3) as quick, pytest.raises(httpx.ReadTimeout):
        quick.get(f"{sim.urls[0]}/master/state")
    sim.heal()  # the stalled handler returns; stopping the simulator does not wait 30 s


def test_stopped_master_refuses_connections_then_restarts_on_its_port(
    sim: MesosSimulator, http: httpx.Client
) -> None:
    url = sim.urls[0]
    sim.stop_master(0)
    with pytest.raises(httpx.ConnectError):
        http.get(f"{url}/master/state")
    sim.start_master(0)
    assert sim.urls[0] == url
    assert http.get(f"{url}/master/state").status_code == 200


def test_requests_are_recorded_per_path_and_master(sim: MesosSimulator, http: httpx.Client) -> None:
    http.get(f"{sim.urls[0]}/master/state", headers={"User-Agent": "probe"})
    http.get(f"{sim.urls[1]}/master/redirect")
    http.get(f"{sim.urls[1]}/__sim__/requests")  # control requests are not recorded
    assert sim.count() == 2
    assert sim.count("/master/state") == sim.count("/master/state", master=0) == 1
    assert sim.requests("/master/state")[0].user_agent == "probe"
    sim.reset_requests()
    assert sim.count() == 0


def test_http_control_api(sim: MesosSimulator, cluster: SimCluster, http: httpx.Client) -> None:
    control = f"{sim.urls[1]}/__sim__"
    http.get(f"{sim.urls[0]}/master/state")
    recorded = http.get(f"{control}/requests", params={"path": "/master/state"}).json()
    assert [(r["master"], r["path"]) for r in recorded] == [(0, "/master/state")]
    assert http.delete(f"{control}/requests").status_code == 204
    assert sim.count() == 0

    assert http.put(f"{control}/leader", json={"leader": 1}).status_code == 204
    assert sim.leader_url == sim.urls[1]
    assert http.put(f"{control}/fault", json={"kind": "status", "status": 500}).status_code == 204
    assert http.get(f"{sim.urls[1]}/master/state").status_code == 500
    assert http.put(f"{control}/fault", json={"kind": "none"}).status_code == 204
    assert http.get(f"{sim.urls[1]}/master/state").status_code == 200

    agent = {"id": "new-S9", "ip": "127.0.0.9", "port": 15003}
    assert http.post(f"{control}/agents", json=agent).status_code == 201
    task = {
        "id": "late.1",
        "name": "late",
        "framework_id": cluster.frameworks[0].id,
        "agent_id": "new-S9",
        "containers": ["c1", "c2"],
        "labels": {"DCOS_SPACE": "/late"},
    }
    assert http.post(f"{control}/tasks", json=task).status_code == 201
    snapshot = build_snapshot(
        http.get(f"{sim.urls[1]}/master/state").content, reader_scheme="http", reader_port=61001
    )
    assert snapshot.agents["new-S9"].reader_url == "http://127.0.0.9:61001"
    assert (snapshot.tasks["late.1"].container_id, snapshot.tasks["late.1"].app_id) == (
        "c1.c2",
        "/late",
    )
    assert http.delete(f"{control}/tasks/late.1").status_code == 204
    assert http.delete(f"{control}/agents/new-S9").status_code == 204
    assert http.delete(f"{control}/agents/new-S9").status_code == 404

    assert http.post(f"{control}/masters/0/stop").status_code == 202
    wait_until(sim.urls[0], up=False)
    assert http.post(f"{control}/masters/0/start").status_code == 202
    wait_until(sim.urls[0], up=True)
    assert http.post(f"{control}/masters/5/stop").status_code == 404
    for method, path, body in (
        ("PUT", "/fault", {"kind": "weird"}),
        ("PUT", "/leader", {"leader": 9}),
        ("POST", "/agents", {"id": "no-ip"}),
        ("POST", "/tasks", {"id": "t", "name": "t", "framework_id": "nope", "agent_id": "a"}),
        ("PUT", "/leader", [1]),
    ):
        response = http.request(method, control + path, json=body)
        assert response.status_code == 400, (path, body)


def wait_until(url: str, *, up: bool, timeout: float = 5.0) -> None:
    """Poll with new connections until `url` accepts them (`up`) or refuses them."""

    def accepts() -> bool | None:
        try:
            httpx.get(f"{url}/master/redirect", timeout=1)
            return True
        except httpx.ConnectError:
            return False
        except httpx.TransportError:
            return None  # accepted, then reset: the server is going down right now

    state = "up" if up else "down"
    wait_for(
        f"{url} {state}", lambda: True if accepts() is up else None, timeout=timeout, step=0.02
    )


def test_command_line_serves_a_fixture_until_terminated() -> None:
    path = fixture_path()
    port = free_port("127.0.0.5")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app.devcluster.mesos",
            f"--fixture={path}",
            f"--listen=127.0.0.5:{port}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_http(f"http://127.0.0.5:{port}/master/redirect", proc)
        state = httpx.get(f"http://127.0.0.5:{port}/master/state")
        assert state.content == path.read_bytes()
    finally:
        stop(proc)
        output = proc.stdout.read().decode() if proc.stdout else ""
        if proc.stdout:
            proc.stdout.close()
    assert proc.returncode == 0, output
    assert f"masters http://127.0.0.5:{port}" in output
