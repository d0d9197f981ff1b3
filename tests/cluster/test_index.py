"""The index of a real DC/OS 1.10 master state, and the index's rules on small documents."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from app.cluster import BadState, ClusterSnapshot, build_snapshot
from app.cluster.index import NotLeader, parse_pid

PREFIX = "db10f9b1-5b82-4187-aa47-4fbcefc7cdca"
S0, S1 = f"{PREFIX}-S0", f"{PREFIX}-S1"
MARATHON = f"{PREFIX}-0000"
POD = "parent-pod.instance-da6ef080-b81f-11e7-a9ac-52ad791ffaa8"
POD_EXECUTOR = "instance-parent-pod.da6ef080-b81f-11e7-a9ac-52ad791ffaa8"
POD_CONTAINER = "1eb53d03-e8f2-4de7-8a51-be17b42a3a29"
DOCKER = "single-docker-container.ac0b2d2e-b81f-11e7-a9ac-52ad791ffaa8"


def test_fixture_master_and_leader(fixture_snapshot: ClusterSnapshot) -> None:
    assert fixture_snapshot.master_id == PREFIX
    leader = fixture_snapshot.leader
    assert (leader.ip, leader.port, leader.hostname) == ("10.0.4.125", 5050, "10.0.4.125")
    assert leader.reader_url == "http://10.0.4.125:61001"


def test_fixture_agents(fixture_snapshot: ClusterSnapshot) -> None:
    assert set(fixture_snapshot.agents) == {S0, S1}
    s0, s1 = fixture_snapshot.agents[S0], fixture_snapshot.agents[S1]
    assert (s0.ip, s0.port, s0.reader_url, s0.active) == (
        "10.0.6.133",
        5051,
        "http://10.0.6.133:61001",
        True,
    )
    assert (s1.ip, s1.reader_url) == ("10.0.0.157", "http://10.0.0.157:61001")


def test_fixture_reader_url_follows_settings() -> None:
    from tests.cluster.support import fixture_path

    snapshot = build_snapshot(fixture_path().read_bytes(), reader_scheme="https", reader_port=9)
    assert snapshot.agents[S0].reader_url == "https://10.0.6.133:9"


def test_fixture_pod_tasks(fixture_snapshot: ClusterSnapshot) -> None:
    for name, own in (
        ("container-2", "0f79cb5f-f946-4a65-97ec-e84157216311"),
        ("container-1", "e7ed292a-8390-4da4-8c2a-c13b554e2c2a"),
    ):
        task = fixture_snapshot.task(f"{POD}.{name}")
        assert task is not None
        assert task.container_id == f"{POD_CONTAINER}.{own}"
        assert task.run_container_id == POD_CONTAINER
        assert task.executor_id == POD_EXECUTOR
        assert not task.command_executor
        assert (task.agent_id, task.framework_id) == (S1, MARATHON)
        assert (task.app_id, task.role, task.state) == (
            "/parent-pod",
            "slave_public",
            "TASK_RUNNING",
        )


@pytest.mark.parametrize(
    ("task_id", "container", "app_id"),
    [
        (
            "single-mesos-container.c1f5ae3f-b81f-11e7-a9ac-52ad791ffaa8",
            "1a69d257-48ca-4d3b-aead-332ad881fcc7",
            "/single-mesos-container",
        ),
        (DOCKER, "8498bfde-fc85-4421-b7bf-28bb9a13b154", "/single-docker-container"),
        ("test123-123", "1a69d257-48ca-4d3b-aead-332ad881fcc7", None),
        ("test123-345", "1a69d257-48ca-4d3b-aead-332ad881fcc7", None),
    ],
)
def test_fixture_command_executor_tasks(
    fixture_snapshot: ClusterSnapshot, task_id: str, container: str, app_id: str | None
) -> None:
    task = fixture_snapshot.task(task_id)
    assert task is not None
    assert task.executor_id == task_id  # Mesos says "": the command executor's id is the task's
    assert task.command_executor
    assert task.container_id == container
    assert task.app_id == app_id
    assert not task.completed


def test_fixture_test123_is_ambiguous_by_name_and_unique_by_id(
    fixture_snapshot: ClusterSnapshot,
) -> None:
    named = fixture_snapshot.tasks_named("test123")
    assert [t.id for t in named] == ["test123-123", "test123-345"]
    assert [t.id for t in fixture_snapshot.find_tasks("test123")] == ["test123-123", "test123-345"]
    assert [t.id for t in fixture_snapshot.find_tasks("test123-345")] == ["test123-345"]


def test_fixture_completed_tasks_and_frameworks(fixture_snapshot: ClusterSnapshot) -> None:
    frameworks = fixture_snapshot.frameworks
    assert {f.name: f.completed for f in frameworks.values()} == {
        "marathon": False,
        "metronome": False,
        "cassandra": True,
    }
    assert frameworks[MARATHON].role == "slave_public"
    cassandra = next(t for t in fixture_snapshot.all_tasks if t.name == "node-0-server")
    assert cassandra.completed
    assert cassandra.state == "TASK_KILLED"
    assert cassandra.role == "cassandra-role"
    assert cassandra.executor_id == "node__9a542345-b67d-4ece-9495-8ef52083d175"
    # The status whose state is the task's (TASK_KILLED), outermost container first.
    assert cassandra.container_id == (
        "f9c3e6b1-06ec-451d-a3f4-6a173e22360b.ca7771e1-a932-472c-9220-e908d0f17655"
    )
    assert cassandra.app_id is None  # not a Marathon framework, no app label


def test_fixture_reused_id_active_task_wins(fixture_snapshot: ClusterSnapshot) -> None:
    # The fixture lists DOCKER running, and also a completed run named single-docker-completed.
    runs = [t for t in fixture_snapshot.all_tasks if t.id == DOCKER]
    assert [(t.name, t.completed) for t in runs] == [
        ("single-docker-container", False),
        ("single-docker-completed", True),
    ]
    assert fixture_snapshot.tasks[DOCKER].name == "single-docker-container"
    assert len(fixture_snapshot.tasks) == 7
    assert len(fixture_snapshot.all_tasks) == 8


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("container-1", [f"{POD}.container-1"]),  # by name
        (f"{POD}.container-2", [f"{POD}.container-2"]),  # by exact id
        ("parent-pod", [f"{POD}.container-2", f"{POD}.container-1"]),  # id fragment: both
        ("single-docker-container", [DOCKER]),  # active name wins; the completed run not listed
        ("single-docker-completed", [DOCKER]),  # only a completed task matches: found
        ("node-0-server", ["node-0-server__29de48bb-dfd7-4ccc-a5ba-7918b2eb880c"]),
        ("no-such-task", []),
    ],
)
def test_fixture_find_tasks(
    fixture_snapshot: ClusterSnapshot, query: str, expected: list[str]
) -> None:
    assert [t.id for t in fixture_snapshot.find_tasks(query)] == expected


def test_find_completed_only_match_returns_the_completed_run(
    fixture_snapshot: ClusterSnapshot,
) -> None:
    (task,) = fixture_snapshot.find_tasks("single-docker-completed")
    assert task.completed
    assert task.name == "single-docker-completed"


def test_snapshot_is_read_only(fixture_snapshot: ClusterSnapshot) -> None:
    with pytest.raises(TypeError):
        fixture_snapshot.agents["x"] = fixture_snapshot.agents[S0]  # type: ignore[index]
    with pytest.raises(AttributeError):
        fixture_snapshot.master_id = "x"  # type: ignore[misc]


# Small documents --------------------------------------------------------------------------


def state(**extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "m1",
        "pid": "master@10.0.0.9:5050",
        "leader": "master@10.0.0.9:5050",
        "slaves": [],
        "frameworks": [{"id": "f1", "name": "marathon", "role": "r1", "tasks": []}],
    }
    return base | extra


def snap(doc: Any) -> ClusterSnapshot:
    return build_snapshot(orjson.dumps(doc), reader_scheme="http", reader_port=61001)


def task(task_id: str, *statuses: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "id": task_id,
        "name": extra.pop("name", task_id),
        "framework_id": "f1",
        "executor_id": "",
        "slave_id": "a1",
        "state": extra.pop("state", "TASK_RUNNING"),
        "statuses": list(statuses),
        **extra,
    }


def status(state: str, when: float, *chain: str) -> dict[str, Any]:
    container: dict[str, Any] = {}
    for value in chain:  # outermost first
        container = {"value": value, "parent": container} if container else {"value": value}
    return {"state": state, "timestamp": when, "container_status": {"container_id": container}}


@pytest.mark.parametrize(
    "body",
    [b"", b"{not json", b"[]", b'"state"', orjson.dumps(state(id=None))],
)
def test_bad_documents(body: bytes) -> None:
    with pytest.raises(BadState):
        build_snapshot(body, reader_scheme="http", reader_port=61001)


def test_wrong_shapes_are_bad_state() -> None:
    with pytest.raises(BadState):
        snap(state(slaves={"a": 1}))
    with pytest.raises(BadState):
        snap(state(frameworks=[{"name": "no id"}]))
    with pytest.raises(BadState):
        snap(state(frameworks=[{"id": "f1", "tasks": ["not an object"]}]))


def test_a_task_missing_ids_is_skipped_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    tasks = [{"id": "t", "name": "no framework id"}, task("ok.1")]
    snapshot = snap(state(frameworks=[{"id": "f1", "name": "x", "tasks": tasks}]))
    assert list(snapshot.tasks) == ["ok.1"]
    assert "Mesos task 't' skipped: missing 'framework_id'" in caplog.text


def test_a_master_that_does_not_lead_names_the_leader() -> None:
    doc = state(
        leader="master@10.0.0.8:5050",
        leader_info={"hostname": "m2.example", "port": 5050, "pid": "master@10.0.0.8:5050"},
    )
    with pytest.raises(NotLeader) as raised:
        snap(doc)
    assert raised.value.leader == ("m2.example", 5050)
    with pytest.raises(NotLeader) as raised:
        snap(state(leader=None))
    assert raised.value.leader is None


def test_agent_without_usable_pid_is_skipped() -> None:
    slaves = [
        {"id": "good", "hostname": "h", "pid": "slave(1)@10.1.1.1:5051"},
        {"id": "host", "hostname": "h", "pid": "slave(1)@evil.example:5051"},
        {"id": "none", "hostname": "h"},
        {"id": "v6", "hostname": "h", "pid": "slave(1)@[fd00::1]:5051", "active": False},
    ]
    agents = snap(state(slaves=slaves)).agents
    assert set(agents) == {"good", "v6"}
    assert agents["v6"].reader_url == "http://[fd00::1]:61001"
    assert not agents["v6"].active


@pytest.mark.parametrize(
    ("pid", "expected"),
    [
        ("slave(1)@10.0.0.157:5051", ("10.0.0.157", 5051)),
        ("master@127.0.0.2:5050", ("127.0.0.2", 5050)),
        ("slave(1)@[::1]:5051", ("::1", 5051)),
    ],
)
def test_parse_pid(pid: str, expected: tuple[str, int]) -> None:
    assert parse_pid(pid) == expected


@pytest.mark.parametrize(
    "pid", ["", "10.0.0.1:5051", "slave(1)@10.0.0.1", "slave(1)@h:5051", "slave(1)@10.0.0.1:0"]
)
def test_parse_pid_rejects(pid: str) -> None:
    with pytest.raises(BadState):
        parse_pid(pid)


def test_container_chain_from_the_status_matching_the_task_state() -> None:
    t = task(
        "t1",
        status("TASK_STARTING", 1.0, "old"),
        status("TASK_RUNNING", 2.0, "outer", "inner"),
        status("TASK_KILLING", 3.0, "later"),
    )
    (found,) = snap(state(frameworks=[{"id": "f1", "name": "x", "tasks": [t]}])).all_tasks
    assert found.container_chain == ("outer", "inner")


def test_container_chain_falls_back_to_the_latest_status_with_one() -> None:
    t = task(
        "t1",
        status("TASK_STARTING", 5.0, "newest"),
        status("TASK_STAGING", 1.0, "oldest"),
        {"state": "TASK_RUNNING", "timestamp": 9.0},
    )
    (found,) = snap(state(frameworks=[{"id": "f1", "name": "x", "tasks": [t]}])).all_tasks
    assert found.container_chain == ("newest",)
    bare = task("t2")
    (found,) = snap(state(frameworks=[{"id": "f1", "name": "x", "tasks": [bare]}])).all_tasks
    assert (found.container_chain, found.container_id, found.run_container_id) == ((), "", "")


def test_reused_completed_id_keeps_the_latest_run() -> None:
    runs = [
        task("job.1", status("TASK_FINISHED", 10.0, "first"), name="a"),
        task("job.1", status("TASK_FINISHED", 20.0, "second"), name="b"),
        task("job.1", status("TASK_FINISHED", 15.0, "third"), name="c"),
    ]
    doc = state(frameworks=[{"id": "f1", "name": "x", "completed_tasks": runs}])
    assert snap(doc).tasks["job.1"].container_id == "second"


def test_task_sources_and_roles() -> None:
    doc = state(
        frameworks=[
            {
                "id": "f1",
                "name": "marathon",
                "roles": ["multi", "other"],
                "tasks": [task("a.1")],
                "unreachable_tasks": [task("b.1", state="TASK_UNREACHABLE")],
            }
        ],
        completed_frameworks=[
            {"id": "f2", "name": "gone", "tasks": [task("c.1", framework_id="f2", role="own")]}
        ],
        orphan_tasks=[task("d.1", framework_id="f9")],
    )
    snapshot = snap(doc)
    found = {t.id: (t.completed, t.role) for t in snapshot.all_tasks}
    assert found == {
        "a.1": (False, "multi"),
        "b.1": (False, "multi"),
        "d.1": (False, "*"),
        "c.1": (True, "own"),
    }
    assert snapshot.frameworks["f2"].role == "*"
    assert snapshot.tasks["a.1"].app_id == "/a"
    assert snapshot.tasks["d.1"].app_id is None  # unknown framework: no Marathon id parsing


# The document itself and each task's place in it ----------------------------------------


def test_fixture_state_is_the_parsed_document(fixture_snapshot: ClusterSnapshot) -> None:
    from tests.cluster.support import fixture_path

    assert fixture_snapshot.state == orjson.loads(fixture_path().read_bytes())


def test_fixture_reused_id_is_told_apart_by_its_place(fixture_snapshot: ClusterSnapshot) -> None:
    # frameworks[0] is Metronome, [1] Marathon; the one completed framework is Cassandra.
    running = fixture_snapshot.task_at[("frameworks", 1, "tasks", 5)]
    completed = fixture_snapshot.task_at[("frameworks", 1, "completed_tasks", 0)]
    assert running.id == completed.id == DOCKER
    assert (running.name, running.completed) == ("single-docker-container", False)
    assert (completed.name, completed.completed) == ("single-docker-completed", True)
    cassandra = fixture_snapshot.task_at[("completed_frameworks", 0, "completed_tasks", 0)]
    assert cassandra.name == "node-0-server"
    assert len(fixture_snapshot.task_at) == len(fixture_snapshot.all_tasks) == 8


def test_every_place_points_at_its_task_in_the_document(
    fixture_snapshot: ClusterSnapshot,
) -> None:
    for path, found in fixture_snapshot.task_at.items():
        raw: Any = fixture_snapshot.state
        for step in path:
            raw = raw[step]
        assert (raw["id"], raw["slave_id"], raw["name"]) == (found.id, found.agent_id, found.name)


def test_places_in_document_order_and_skipped_tasks_have_none() -> None:
    doc = state(
        frameworks=[
            {
                "id": "f1",
                "name": "marathon",
                "tasks": [{"id": "broken"}, task("a.1")],
                "unreachable_tasks": [task("b.1", state="TASK_UNREACHABLE")],
                "completed_tasks": [task("a.1", state="TASK_FINISHED")],
            }
        ],
        completed_frameworks=[
            {"id": "f2", "name": "gone", "tasks": [task("c.1", framework_id="f2")]}
        ],
        orphan_tasks=[task("d.1", framework_id="f9")],
    )
    snapshot = snap(doc)
    assert [(path, t.id) for path, t in snapshot.task_at.items()] == [
        (("frameworks", 0, "tasks", 1), "a.1"),
        (("frameworks", 0, "unreachable_tasks", 0), "b.1"),
        (("frameworks", 0, "completed_tasks", 0), "a.1"),
        (("completed_frameworks", 0, "tasks", 0), "c.1"),
        (("orphan_tasks", 0), "d.1"),
    ]
    assert snapshot.task_at[("frameworks", 0, "completed_tasks", 0)].completed
    assert snapshot.state["frameworks"][0]["tasks"][0] == {"id": "broken"}
    with pytest.raises(TypeError):
        snapshot.task_at[("orphan_tasks", 1)] = snapshot.tasks["d.1"]  # type: ignore[index]
