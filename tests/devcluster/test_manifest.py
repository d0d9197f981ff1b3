"""`cluster.json` and the dcos CLI configs a running dev cluster leaves for scripts: their
shape, their modes, and that they go away. (That the tokens in them work: tests/cli/test_dev.py.)"""

from __future__ import annotations

import json
import stat
import tomllib
from pathlib import Path

from app.devcluster import manifest
from app.devcluster.accounts import Identities, Identity
from app.devcluster.cluster import DevCluster, DevClusterConfig, build

MASTER_ID = "master-mesos-id"


def cluster(data_dir: Path) -> DevCluster:
    config = DevClusterConfig(
        master_ip="127.0.0.31", agent_ips=("127.0.0.32", "127.0.0.33"), data_dir=data_dir
    )
    return build(config, python="python3")


def identities(data_dir: Path) -> Identities:
    return Identities(
        superuser=Identity(uid="admin", token="t-admin", password="p-admin"),
        dev=Identity(uid="dev", token="t-dev", password="p-dev"),
        service=Identity(
            uid="logway-ops", token="t-ops", private_key_path=data_dir / "logway-ops.pem"
        ),
    )


def test_cluster_json_has_the_agreed_shape(tmp_path: Path) -> None:
    dev = cluster(tmp_path)
    path = manifest.write(dev, identities(tmp_path), master_id=MASTER_ID)
    assert path == tmp_path / "cluster.json"
    doc = json.loads(path.read_text())
    assert set(doc) == {
        "gateway_url",
        "replicas",
        "identities",
        "master",
        "agents",
        "tasks",
        "dcos_config",
    }
    assert doc["gateway_url"] == "http://127.0.0.31:8000"
    assert doc["replicas"] == ["http://127.0.0.31:8000"]  # one gateway: itself
    assert doc["identities"] == {
        "superuser": {"uid": "admin", "password": "p-admin", "token": "t-admin"},
        "dev": {"uid": "dev", "password": "p-dev", "token": "t-dev"},
        "service": {
            "uid": "logway-ops",
            "private_key_path": str(tmp_path / "logway-ops.pem"),
            "token": "t-ops",
        },
    }
    assert doc["master"] == {
        "id": MASTER_ID,
        "reader_url": "http://127.0.0.31:61001",
        "journal_namespace": "logway-dev-master",
    }
    assert doc["agents"] == [
        {"id": a.agent_id, "reader_url": a.reader_url, "journal_namespace": a.namespace}
        for a in dev.agents
    ]
    assert [t["id"] for t in doc["tasks"]] == [t.task.id for t in dev.tasks]
    keys = ("id", "name", "app_id", "role", "agent_id", "framework_id", "executor_id")
    for entry, sample in zip(doc["tasks"], dev.tasks, strict=True):
        assert set(entry) == {*keys, "container_id"}
        assert entry["container_id"] == sample.container_id
        assert entry["role"] == sample.role
        assert entry["app_id"] == sample.app_id
    assert doc["dcos_config"] == str(tmp_path / "dcos-superuser.toml")


def test_one_dcos_config_per_user_and_everything_private(tmp_path: Path) -> None:
    dev = cluster(tmp_path)
    manifest.write(dev, identities(tmp_path), master_id=MASTER_ID)
    for who, token in (("superuser", "t-admin"), ("dev", "t-dev")):
        config = tomllib.loads(manifest.dcos_config_path(tmp_path, who).read_text())
        assert config == {
            "core": {"dcos_url": dev.gateway_url, "dcos_acs_token": token, "reporting": False}
        }
    for name in ("cluster.json", "dcos-superuser.toml", "dcos-dev.toml"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600, name
    cli_dir = manifest.dcos_dir(tmp_path)
    assert list(cli_dir.iterdir()) == []  # no `clusters/`: the CLI reads DCOS_CONFIG


def test_remove_takes_away_what_write_left(tmp_path: Path) -> None:
    dev = cluster(tmp_path)
    (tmp_path / "dev-password").write_text("kept\n")
    manifest.write(dev, identities(tmp_path), master_id=MASTER_ID)
    (manifest.dcos_dir(tmp_path) / "clusters").mkdir()  # as a CLI migrating its config would
    manifest.remove(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dev-password"]
    manifest.remove(tmp_path)  # nothing there: fine
