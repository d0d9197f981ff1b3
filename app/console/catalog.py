"""What the console lists: the nodes, tasks, apps and roles the caller may read, from the
gateway's cluster snapshot filtered exactly as the Mesos state the CLIs read
(`app.gateway.discovery.visibility`). Nodes are listed only to holders of the system-logs
permission, the one a node's journal needs; anyone else sees their tasks (with the id of the
agent that runs each) and nothing of the other nodes."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool

from app.authz import Authorizer
from app.cluster import Cluster, ClusterSnapshot
from app.gateway.discovery import Visibility, visibility


async def catalog_document(uid: str, authorizer: Authorizer, cluster: Cluster) -> bytes:
    snapshot = await cluster.snapshot()
    seen = await visibility(uid, authorizer, snapshot)
    return await run_in_threadpool(_render, uid, snapshot, seen)


def _render(uid: str, snapshot: ClusterSnapshot, seen: Visibility) -> bytes:
    tasks = [task for task in snapshot.all_tasks if seen.sees(task)]
    nodes: list[dict[str, Any]] = []
    if seen.readable is None:
        leader = snapshot.leader
        nodes.append({"id": "leader", "kind": "leader", "hostname": leader.hostname})
        nodes.append({"id": "master", "kind": "master", "hostname": leader.hostname})
        nodes += [
            {"id": agent.id, "kind": "agent", "hostname": agent.hostname, "active": agent.active}
            for agent in sorted(snapshot.agents.values(), key=lambda a: a.id)
        ]
    document = {
        "uid": uid,
        "nodes": nodes,
        "tasks": [
            {
                "id": task.id,
                "name": task.name,
                "state": task.state,
                "completed": task.completed,
                "agent_id": task.agent_id,
                "framework_id": task.framework_id,
                "executor_id": task.executor_id,
                "container_id": task.container_id,
                "app_id": task.app_id,
                "role": task.role,
            }
            for task in tasks
        ],
        "apps": sorted({task.app_id for task in tasks if task.app_id}),
        "roles": sorted({task.role for task in tasks if task.role}),
    }
    return orjson.dumps(document)
