"""`logway dev --replicas 3`: a real PostgreSQL, three gateway replicas and nginx in front on
the gateway's address (master 127.0.0.188, one agent on 127.0.0.189). `logway logs app /prod
-f` through nginx survives a `kill -9` of the replica serving it: the CLI reconnects through
nginx to another replica and resumes from its composite cursor, no line lost or repeated.
Stopping the cluster leaves nothing behind (PostgreSQL's directory included)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.devcluster import manifest
from app.devcluster.cluster import DevCluster, DevClusterConfig, build
from app.devcluster.commands import logway_argv
from app.devcluster.supervisor import Supervisor
from tests.conftest import free_port, journald_available, new_namespace_name
from tests.support.postgres import postgres_available
from tests.support.wait import wait_for

pytestmark = pytest.mark.skipif(
    not (journald_available() and postgres_available()), reason="needs root, journald, PostgreSQL"
)

MASTER, AGENT = "127.0.0.188", "127.0.0.189"
REPLICAS = 3
LINE = re.compile(r"/prod/web page rendered (\d+)$")


@pytest.fixture(scope="module")
def dev() -> Iterator[tuple[DevCluster, Supervisor]]:
    # PostgreSQL runs as its own user under it: not under pytest's 0700 directory.
    data_dir = Path(tempfile.mkdtemp(prefix="logway-dev-replicas-"))
    data_dir.chmod(0o755)
    config = DevClusterConfig(
        master_ip=MASTER,
        agent_ips=(AGENT,),
        mesos_port=free_port(MASTER),
        reader_port=free_port(AGENT),
        gateway_port=free_port(MASTER),
        postgres_port=free_port(MASTER),
        namespace=new_namespace_name(),
        data_dir=data_dir,
        replicas=REPLICAS,
    )
    cluster = build(config, python="python3")
    supervisor = Supervisor(cluster, password="dev replicas password")
    try:
        with supervisor:
            yield cluster, supervisor
        assert not (data_dir / "postgres").exists()
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    for port in (config.gateway_port, config.postgres_port, *cluster.replica_ports):
        with socket.socket() as s:
            # Nothing listens there any more (closed connections may linger in TIME_WAIT).
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((MASTER, port))


def test_cluster_json_lists_the_replicas(dev: tuple[DevCluster, Supervisor]) -> None:
    cluster, supervisor = dev
    described = manifest.describe(cluster, supervisor.identities, master_id=supervisor.master_id)
    assert described["replicas"] == list(cluster.replica_urls)
    assert len(described["replicas"]) == REPLICAS
    assert described["gateway_url"] == cluster.gateway_url  # nginx
    token = supervisor.identities.superuser.token
    keys = {str(httpx.get(f"{u}/acs/api/v1/auth/jwks").json()) for u in cluster.replica_urls}
    assert len(keys) == 1
    r = httpx.get(
        f"{cluster.gateway_url}/acs/api/v1/users", headers={"Authorization": f"token={token}"}
    )
    assert r.status_code == 200


def test_a_follow_survives_the_death_of_its_replica(
    dev: tuple[DevCluster, Supervisor], tmp_path: Path
) -> None:
    cluster, supervisor = dev
    token = supervisor.identities.superuser.token
    headers = {"Authorization": f"token={token}"}
    env = {
        **os.environ,
        "LOGWAY_TOKEN": token,
        "XDG_CONFIG_HOME": str(tmp_path),
        "NO_COLOR": "1",
    }
    argv = logway_argv("logs", "app", "/prod", "-f", "-n", "2", "--url", cluster.gateway_url)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    seen: list[int] = []
    lock = threading.Lock()

    def read() -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            found = LINE.search(raw.decode(errors="replace").rstrip())
            if found:
                with lock:
                    seen.append(int(found.group(1)))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_for("the first lines", lambda: len(seen) >= 3 or None, timeout=30)
        serving = wait_for("the serving replica", lambda: _serving(cluster, headers), timeout=10)
        killed_at = len(seen)
        replica = supervisor._started.replicas[serving]
        os.kill(replica.proc.pid, signal.SIGKILL)
        replica.proc.wait()
        wait_for("lines after the kill", lambda: len(seen) >= killed_at + 5 or None, timeout=40)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        reader.join(5)
    with lock:
        numbers = list(seen)
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), (numbers, err)
    assert len(numbers) > killed_at
    print(f"\nreplica {serving} killed after line {numbers[killed_at - 1]}; lines {numbers}")


def _serving(cluster: DevCluster, headers: dict[str, str]) -> int | None:
    """The index of the replica holding the merged stream (its gauge), None if none yet."""
    for i, url in enumerate(cluster.replica_urls):
        text = httpx.get(f"{url}/metrics", headers=headers, timeout=5).text
        found = re.search(r"^logway_proxy_merged_active_streams (\d+)$", text, re.M)
        if found and int(found.group(1)) > 0:
            return i
    time.sleep(0.05)
    return None
