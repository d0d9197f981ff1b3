"""The dev cluster's description: what the simulator serves is what the sample tasks ship
under, as the gateway's own index reads it back."""

from __future__ import annotations

import shlex

import httpx
import pytest

from app.cluster import build_snapshot
from app.devcluster.cluster import (
    DEV_API,
    DEV_BATCH,
    PROD_WEB,
    DevClusterConfig,
    build,
)
from app.devcluster.mesos import MesosSimulator

CONFIG = DevClusterConfig(master_ip="127.0.0.1", agent_ips=("127.0.0.2", "127.0.0.3"))


def test_the_gateway_index_reads_back_each_sample_tasks_ids() -> None:
    cluster = build(CONFIG, python="python3")
    with MesosSimulator(cluster.sim, masters=[("127.0.0.1", 0)]) as sim:
        body = httpx.get(f"{sim.urls[0]}/master/state", timeout=5).content
    snapshot = build_snapshot(body, reader_scheme="http", reader_port=CONFIG.reader_port)
    assert snapshot.leader.reader_url == "http://127.0.0.1:61001"
    assert {a.id: a.reader_url for a in snapshot.agents.values()} == {
        a.agent_id: a.reader_url for a in cluster.agents
    }
    assert [a.reader_url for a in cluster.agents] == [
        "http://127.0.0.2:61001",
        "http://127.0.0.3:61001",
    ]
    for sample in cluster.tasks:
        task = snapshot.task(sample.task.id)
        assert task is not None, sample.task.id
        assert task.app_id == sample.app_id
        assert task.agent_id == sample.agent_id == sample.agent.agent_id
        assert task.framework_id == sample.framework_id
        assert task.executor_id == sample.executor_id
        assert task.container_id == sample.container_id
        assert snapshot.find_tasks(sample.task.name) == (task,)
    api, web, pod = (cluster.task_for(app) for app in (DEV_API, PROD_WEB, DEV_BATCH))
    assert (api.agent.name, web.agent.name, pod.agent.name) == ("S0", "S1", "S1")
    assert api.task.name == "api.dev"
    assert api.executor_id == api.task.id  # command executor: Mesos reports ""
    assert pod.executor_id != pod.task.id
    parent, child = pod.container_id.split(".")
    pod_task = snapshot.task(pod.task.id)
    assert pod_task is not None
    assert (pod_task.run_container_id, pod_task.container_chain) == (parent, (parent, child))


def test_each_node_has_its_own_namespace_and_address() -> None:
    cluster = build(CONFIG, python="python3")
    assert [n.namespace for n in cluster.nodes] == [
        "logway-dev-master",
        "logway-dev-s0",
        "logway-dev-s1",
    ]
    assert [n.ip for n in cluster.nodes] == ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
    assert cluster.master.agent_id is None
    assert cluster.master.service.unit == "dcos-mesos-master.service"


def test_sample_tasks_run_under_their_own_labels() -> None:
    cluster = build(CONFIG, python="/py")
    argv = [shlex.join(t.argv) for t in cluster.tasks]
    assert argv == [
        "/py -m app.devcluster.sample_task /dev/api 'request served'",
        "/py -m app.devcluster.sample_task /prod/web 'page rendered'",
        "/py -m app.devcluster.sample_task /dev/batch/worker 'job done'",
    ]


def test_fresh_ids_per_run() -> None:
    assert build(CONFIG, python="p").sim.master_id != build(CONFIG, python="p").sim.master_id


@pytest.mark.parametrize(
    "agent_ips", [(), ("127.0.0.1",), ("127.0.0.2", "127.0.0.2")], ids=["none", "master's", "twice"]
)
def test_config_refuses_missing_or_shared_addresses(agent_ips: tuple[str, ...]) -> None:
    with pytest.raises(ValueError, match=r"agent|address"):
        DevClusterConfig(agent_ips=agent_ips)
