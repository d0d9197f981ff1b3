"""The dev cluster's description: what the simulator serves is what the sample tasks ship
under, as the gateway's own index reads it back."""

from __future__ import annotations

import shlex

import httpx
import pytest

from app.cluster import build_snapshot
from app.devcluster.cluster import (
    DEV_BATCH,
    DEV_WORKER,
    MAX_AGENTS,
    PROD_WEB,
    DevClusterConfig,
    build,
    consecutive_ips,
)
from app.devcluster.mesos import MesosSimulator

CONFIG = DevClusterConfig(master_ip="127.0.0.1", agent_ips=("127.0.0.2", "127.0.0.3"))
THREE = DevClusterConfig(master_ip="127.0.0.1", agent_ips=consecutive_ips("127.0.0.1", 3))


@pytest.mark.parametrize("config", [CONFIG, THREE], ids=["two agents", "three agents"])
def test_the_gateway_index_reads_back_each_sample_tasks_ids_and_role(
    config: DevClusterConfig,
) -> None:
    cluster = build(config, python="python3")
    with MesosSimulator(cluster.sim, masters=[("127.0.0.1", 0)]) as sim:
        body = httpx.get(f"{sim.urls[0]}/master/state", timeout=5).content
    snapshot = build_snapshot(body, reader_scheme="http", reader_port=config.reader_port)
    assert snapshot.leader.reader_url == "http://127.0.0.1:61001"
    assert {a.id: a.reader_url for a in snapshot.agents.values()} == {
        a.agent_id: a.reader_url for a in cluster.agents
    }
    for sample in cluster.tasks:
        task = snapshot.task(sample.task.id)
        assert task is not None, sample.task.id
        assert task.app_id == sample.app_id
        assert task.role == sample.role
        assert task.agent_id == sample.agent_id == sample.agent.agent_id
        assert task.framework_id == sample.framework_id
        assert task.executor_id == sample.executor_id
        assert task.container_id == sample.container_id
    roles = {(t.app_id, snapshot.task(t.task.id).role) for t in cluster.tasks}  # type: ignore[union-attr]
    assert roles == {(PROD_WEB, "prod"), (DEV_WORKER, "dev"), (DEV_BATCH, "dev")}
    # Names a client can use: the worker's and each pod task's are unique.
    worker = cluster.task_for(DEV_WORKER)
    assert worker.task.name == "worker.dev"
    assert worker.executor_id == worker.task.id  # command executor: Mesos reports ""
    assert snapshot.find_tasks("worker.dev") == (snapshot.task(worker.task.id),)
    for pod_task in cluster.tasks_of(DEV_BATCH):
        assert snapshot.find_tasks(pod_task.task.name) == (snapshot.task(pod_task.task.id),)


def test_prod_web_runs_on_every_agent() -> None:
    cluster = build(THREE, python="python3")
    webs = cluster.tasks_of(PROD_WEB)
    assert [w.agent.name for w in webs] == ["S0", "S1", "S2"]
    assert {w.task.name for w in webs} == {"web.prod"}  # Marathon names instances alike
    assert len({w.task.id for w in webs}) == 3
    assert cluster.task_for(DEV_WORKER).agent.name == "S0"


def test_the_pod_has_two_tasks_in_nested_containers_of_one_executor() -> None:
    cluster = build(THREE, python="python3")
    loader, reporter = cluster.tasks_of(DEV_BATCH)
    assert (loader.task.name, reporter.task.name) == ("loader", "reporter")
    assert loader.agent is reporter.agent
    assert loader.executor_id == reporter.executor_id != loader.task.id
    assert loader.executor_id.startswith("instance-dev_batch.")
    loader_parent, loader_child = loader.container_id.split(".")
    reporter_parent, reporter_child = reporter.container_id.split(".")
    assert loader_parent == reporter_parent
    assert loader_child != reporter_child
    assert loader.task.id.endswith(".loader")
    assert reporter.task.id.endswith(".reporter")


def test_each_node_has_its_own_namespace_and_address() -> None:
    cluster = build(CONFIG, python="python3")
    assert [n.namespace for n in cluster.nodes] == [
        "logway-dev-master",
        "logway-dev-s0",
        "logway-dev-s1",
    ]
    assert [n.ip for n in cluster.nodes] == ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
    assert [a.reader_url for a in cluster.agents] == [
        "http://127.0.0.2:61001",
        "http://127.0.0.3:61001",
    ]
    assert cluster.master.agent_id is None
    assert cluster.master.service.unit == "dcos-mesos-master.service"


def test_sample_tasks_run_under_their_own_labels() -> None:
    cluster = build(CONFIG, python="/py")
    argv = [shlex.join(t.argv) for t in cluster.tasks]
    assert argv == [
        "/py -m app.devcluster.sample_task /prod/web 'page rendered'",
        "/py -m app.devcluster.sample_task /prod/web 'page rendered'",
        "/py -m app.devcluster.sample_task /dev/worker 'job done'",
        "/py -m app.devcluster.sample_task /dev/batch/loader 'batch step'",
        "/py -m app.devcluster.sample_task /dev/batch/reporter 'batch step'",
    ]


def test_fresh_ids_per_run() -> None:
    assert build(CONFIG, python="p").sim.master_id != build(CONFIG, python="p").sim.master_id


def test_the_default_agents_follow_the_master() -> None:
    assert DevClusterConfig().agent_ips == ("127.0.0.2", "127.0.0.3")
    assert consecutive_ips("127.0.0.31", 3) == ("127.0.0.32", "127.0.0.33", "127.0.0.34")
    assert len(consecutive_ips("127.0.1.1", MAX_AGENTS)) == MAX_AGENTS


@pytest.mark.parametrize(
    ("master", "count", "error"),
    [
        ("127.0.0.1", 0, "1 to 50"),
        ("127.0.0.1", MAX_AGENTS + 1, "1 to 50"),
        ("127.0.0.250", 5, "run past 127.0.0.254"),
        ("localhost", 2, "IPv4 address"),
    ],
)
def test_consecutive_ips_refuses(master: str, count: int, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        consecutive_ips(master, count)


@pytest.mark.parametrize(
    "agent_ips", [(), ("127.0.0.1",), ("127.0.0.2", "127.0.0.2")], ids=["none", "master's", "twice"]
)
def test_config_refuses_missing_or_shared_addresses(agent_ips: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match=r"agent|address"):
        DevClusterConfig(agent_ips=agent_ips)
