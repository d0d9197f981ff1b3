"""What a running dev cluster leaves for scripts and clients under its data directory:
`cluster.json` (addresses, ids, identities and their tokens) and one DC/OS CLI config file per
identity (`DCOS_CONFIG`). All 0600: they hold tokens and passwords. They describe one run (fresh
Mesos ids), so `remove` takes them away when the cluster stops.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from app.devcluster.accounts import Identities, Identity, write_private
from app.devcluster.cluster import DevCluster, Node

MANIFEST = "cluster.json"
DCOS_CONFIGS = {"superuser": "dcos-superuser.toml", "dev": "dcos-dev.toml"}
# The CLI reads `DCOS_CONFIG` only while `$DCOS_DIR/clusters` does not exist (otherwise it
# uses the attached cluster's config): this directory is kept empty for it.
DCOS_DIR = "dcos-cli"


def manifest_path(data_dir: Path) -> Path:
    return data_dir / MANIFEST


def dcos_config_path(data_dir: Path, who: str) -> Path:
    return data_dir / DCOS_CONFIGS[who]


def dcos_dir(data_dir: Path) -> Path:
    return data_dir / DCOS_DIR


def write(cluster: DevCluster, identities: Identities, *, master_id: str) -> Path:
    """The DC/OS CLI configs, then `cluster.json` (last: its presence means all is there).
    `master_id`: the Mesos id the running master reports (the simulator's, per run)."""
    data_dir = cluster.config.data_dir
    for who, identity in (("superuser", identities.superuser), ("dev", identities.dev)):
        write_private(dcos_config_path(data_dir, who), dcos_toml(cluster.gateway_url, identity))
    shutil.rmtree(dcos_dir(data_dir), ignore_errors=True)
    dcos_dir(data_dir).mkdir(mode=0o700)
    path = manifest_path(data_dir)
    text = json.dumps(describe(cluster, identities, master_id=master_id), indent=2)
    write_private(path, text + "\n")
    return path


def remove(data_dir: Path) -> None:
    manifest_path(data_dir).unlink(missing_ok=True)
    for who in DCOS_CONFIGS:
        dcos_config_path(data_dir, who).unlink(missing_ok=True)
    shutil.rmtree(dcos_dir(data_dir), ignore_errors=True)


def dcos_toml(gateway_url: str, identity: Identity) -> str:
    """The dcos CLI 0.6 config: the cluster's URL and a token; no usage reporting."""
    return (
        "[core]\n"
        f"dcos_url = {json.dumps(gateway_url)}\n"
        f"dcos_acs_token = {json.dumps(identity.token)}\n"
        "reporting = false\n"
    )


def describe(cluster: DevCluster, identities: Identities, *, master_id: str) -> dict[str, Any]:
    data_dir = cluster.config.data_dir
    service_key = identities.service.private_key_path
    return {
        "gateway_url": cluster.gateway_url,
        # Every gateway process serving the cluster: the replicas behind nginx (--replicas N),
        # or the one gateway.
        "replicas": list(cluster.replica_urls) or [cluster.gateway_url],
        "identities": {
            "superuser": _user(identities.superuser),
            "dev": _user(identities.dev),
            "service": {
                "uid": identities.service.uid,
                "private_key_path": str(service_key) if service_key else None,
                "token": identities.service.token,
            },
        },
        "master": _node(cluster.master, master_id),
        "agents": [_node(agent, agent.agent_id or "") for agent in cluster.agents],
        "tasks": [
            {
                "id": t.task.id,
                "name": t.task.name,
                "app_id": t.app_id,
                "role": t.role,
                "agent_id": t.agent_id,
                "framework_id": t.framework_id,
                "executor_id": t.executor_id,
                "container_id": t.container_id,
            }
            for t in cluster.tasks
        ],
        "dcos_config": str(dcos_config_path(data_dir, "superuser")),
    }


def _user(identity: Identity) -> dict[str, Any]:
    return {"uid": identity.uid, "password": identity.password, "token": identity.token}


def _node(node: Node, mesos_id: str) -> dict[str, Any]:
    return {"id": mesos_id, "reader_url": node.reader_url, "journal_namespace": node.namespace}
