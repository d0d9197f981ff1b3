"""The dev cluster supervisor's failures: whatever went wrong, nothing it started is left.
(The whole cluster running is tests/cli/test_dev.py.)"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest

from app.devcluster.cluster import DevCluster, DevClusterConfig, build
from app.devcluster.journald import JournaldNamespace
from app.devcluster.supervisor import DevClusterError, Interrupted, Supervisor
from tests.conftest import free_port, journald_available, new_namespace_name

pytestmark = pytest.mark.skipif(not journald_available(), reason="needs root and journald")

MASTER, AGENTS = "127.0.0.36", ("127.0.0.37", "127.0.0.38")  # apart from other modules' clusters


def dev_cluster(data_dir: Path) -> DevCluster:
    config = DevClusterConfig(
        master_ip=MASTER,
        agent_ips=AGENTS,
        mesos_port=free_port(MASTER),
        reader_port=free_port(AGENTS[0]),
        gateway_port=free_port(MASTER),
        namespace=new_namespace_name(),
        data_dir=data_dir,
    )
    return build(config, python="python3")


def assert_nothing_left(cluster: DevCluster) -> None:
    for node in cluster.nodes:
        ns = JournaldNamespace(node.namespace)
        assert not ns.directory.exists(), ns.directory
        assert not ns.runtime_dir.exists(), ns.runtime_dir
        assert not ns.conf_path.exists(), ns.conf_path
    config = cluster.config
    for port in (config.mesos_port, config.gateway_port):
        with socket.socket() as s:
            s.bind((config.master_ip, port))  # nothing listens there any more


def test_a_busy_address_fails_before_anything_starts(tmp_path: Path) -> None:
    cluster = dev_cluster(tmp_path)
    with socket.socket() as busy:
        busy.bind((MASTER, cluster.config.gateway_port))
        busy.listen()
        with pytest.raises(DevClusterError, match=f"{MASTER}:{cluster.config.gateway_port}"):
            Supervisor(cluster, password="dev password").start()
    assert_nothing_left(cluster)


def test_an_interrupt_during_start_up_stops_what_started(tmp_path: Path) -> None:
    cluster = dev_cluster(tmp_path)
    interrupt = threading.Event()
    interrupt.set()  # as a Ctrl-C during the namespaces' start
    with pytest.raises(Interrupted):
        Supervisor(cluster, password="dev password", interrupt=interrupt).start()
    assert_nothing_left(cluster)


def test_a_child_that_dies_at_start_is_named_and_the_rest_stopped(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    cluster = dev_cluster(not_a_dir)  # the gateway cannot make its IAM store under a file
    env = {**os.environ, "LOGWAY_IAM_SCRYPT_LOG2_N": "12"}
    with pytest.raises(DevClusterError, match=r"gateway exited \(\d+\) while waiting"):
        Supervisor(cluster, password="dev password", env=env).start()
    assert_nothing_left(cluster)
