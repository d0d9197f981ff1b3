"""The leading master's state as one mutable JSON document, shared by every simulated master.

Built from a `SimCluster`, or loaded from a captured `/master/state` and then served byte for
byte until the first change. A built document carries the current leader in its
`id`/`pid`/`hostname`/`leader`/`leader_info`; a loaded one keeps the captured values.
Every method takes the document's lock: the masters serve it from their own threads.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import orjson

from app.devcluster.mesos import model
from app.devcluster.mesos.model import SimAgent, SimCluster, SimFramework, SimMaster, SimTask

SUMMARY_AGENT_KEYS = (
    "id", "hostname", "port", "attributes", "pid", "registered_time", "resources",
    "used_resources", "offered_resources", "reserved_resources", "unreserved_resources",
    "active", "version", "capabilities",
)  # fmt: skip
SUMMARY_FRAMEWORK_KEYS = (
    "id", "name", "pid", "used_resources", "offered_resources", "capabilities", "hostname",
    "webui_url", "active", "connected", "recovered",
)  # fmt: skip
TASK_LISTS = ("tasks", "unreachable_tasks", "completed_tasks")


class StateDocument:
    def __init__(self, doc: dict[str, Any], *, raw: bytes | None = None) -> None:
        self._doc = doc
        self._raw = raw  # verbatim bytes of a loaded document, until it changes
        self._captured = raw is not None  # keeps its own leader fields
        self._lock = threading.RLock()

    @classmethod
    def from_cluster(cls, cluster: SimCluster) -> StateDocument:
        now = time.time()
        doc: dict[str, Any] = {
            "version": model.MESOS_VERSION,
            "git_sha": "0" * 40,
            "build_date": "2018-01-01 00:00:00",
            "build_time": 1514764800.0,
            "build_user": "",
            "start_time": now,
            "elected_time": now,
            "id": cluster.master_id,
            "pid": "",
            "hostname": "",
            "activated_slaves": 0,
            "deactivated_slaves": 0,
            "unreachable_slaves": 0,
            "leader": "",
            "leader_info": {},
            "cluster": cluster.name,
            "flags": {"port": "5050", "authenticate_http_readonly": "false"},
            "slaves": [],
            "recovered_slaves": [],
            "frameworks": [],
            "completed_frameworks": [],
            "orphan_tasks": [],
            "unregistered_frameworks": [],
        }
        document = cls(doc)
        for agent in cluster.agents:
            document.add_agent(agent)
        for framework in cluster.frameworks:
            document.add_framework(framework)
        for task in cluster.tasks:
            document.add_task(task)
        return document

    @classmethod
    def from_file(cls, path: Path) -> StateDocument:
        raw = path.read_bytes()
        doc = orjson.loads(raw)
        if not isinstance(doc, dict):
            raise ValueError(f"{path} is not a Mesos state document")
        return cls(doc, raw=raw)

    # Changes ---------------------------------------------------------------------------------

    def add_agent(self, agent: SimAgent) -> None:
        with self._lock:
            self.remove_agent(agent.id)
            self._doc["slaves"].append(model.render_agent(agent, time.time()))
            self._changed()

    def remove_agent(self, agent_id: str) -> bool:
        with self._lock:
            kept = [a for a in self._doc["slaves"] if a.get("id") != agent_id]
            if len(kept) == len(self._doc["slaves"]):
                return False
            self._doc["slaves"] = kept
            self._changed()
            return True

    def add_framework(self, framework: SimFramework) -> None:
        with self._lock:
            key = "completed_frameworks" if framework.completed else "frameworks"
            self._doc[key].append(model.render_framework(framework, time.time()))
            self._changed()

    def reregister_framework(
        self, framework_id: str, *, host: str, port: int = model.SCHEDULER_PORT, webui_url: str = ""
    ) -> None:
        """The framework's scheduler registers again from `host` (a failover of its own, as
        Marathon's leader election moves it to another master), active and connected."""
        with self._lock:
            framework = self._framework(framework_id)
            sim = model.SimFramework(
                framework_id, framework["name"], scheduler_host=host, scheduler_port=port
            )
            framework["pid"] = model.scheduler_pid(sim)
            framework["hostname"] = host
            framework["webui_url"] = webui_url
            framework["active"] = framework["connected"] = True
            self._changed()

    def disconnect_framework(self, framework_id: str) -> None:
        """The scheduler went away without unregistering: Mesos keeps it, inactive."""
        with self._lock:
            framework = self._framework(framework_id)
            framework["active"] = framework["connected"] = False
            self._changed()

    def add_task(self, task: SimTask) -> None:
        with self._lock:
            framework = self._framework(task.framework_id)
            agent = next((a for a in self._doc["slaves"] if a.get("id") == task.agent_id), None)
            agent_ip = agent["pid"].rpartition("@")[2].rpartition(":")[0] if agent else ""
            rendered = model.render_task(task, agent_ip=agent_ip, role=framework.get("role", "*"))
            framework["completed_tasks" if task.completed else "tasks"].append(rendered)
            self._changed()

    def remove_task(self, task_id: str) -> bool:
        with self._lock:
            removed = False
            for framework in self._all_frameworks():
                for key in TASK_LISTS:
                    tasks = framework.get(key) or []
                    kept = [t for t in tasks if t.get("id") != task_id]
                    if len(kept) < len(tasks):
                        framework[key] = kept
                        removed = True
            if removed:
                self._changed()
            return removed

    # Views -------------------------------------------------------------------------------------

    def state(self, leader: SimMaster) -> bytes:
        with self._lock:
            if self._raw is not None:
                return self._raw
            if self._captured:
                return orjson.dumps(self._doc)
            return orjson.dumps(self._doc | _leader_fields(leader))

    def summary(self, leader: SimMaster) -> dict[str, Any]:
        with self._lock:
            tasks = list(self._tasks())
            agents = []
            for raw in self._doc.get("slaves") or []:
                agent = {k: raw[k] for k in SUMMARY_AGENT_KEYS if k in raw}
                mine = [t for t in tasks if t.get("slave_id") == raw.get("id")]
                agent |= _state_counts(mine)
                agent["framework_ids"] = sorted({t["framework_id"] for t in mine})
                agents.append(agent)
            frameworks = []
            for raw in self._doc.get("frameworks") or []:
                framework = {k: raw[k] for k in SUMMARY_FRAMEWORK_KEYS if k in raw}
                mine = [t for t in tasks if t.get("framework_id") == raw.get("id")]
                framework |= _state_counts(mine)
                framework["slave_ids"] = sorted({t["slave_id"] for t in mine})
                frameworks.append(framework)
            hostname = self._doc.get("hostname") if self._captured else leader.host
            return {
                "hostname": hostname,
                "cluster": self._doc.get("cluster"),
                "slaves": agents,
                "frameworks": frameworks,
            }

    def tasks(
        self, *, framework_id: str | None, task_id: str | None, limit: int, offset: int, desc: bool
    ) -> dict[str, Any]:
        """`/master/tasks`: every task, ordered by start time (Mesos's TaskComparator)."""
        with self._lock:
            found = [
                t
                for t in self._tasks()
                if framework_id in (None, t.get("framework_id")) and task_id in (None, t.get("id"))
            ]
        found.sort(key=_started, reverse=desc)
        return {"tasks": found[offset : offset + limit]}

    def agent_state(self, agent_id: str) -> dict[str, Any] | None:
        """The agent's own `/state`: its frameworks' executors and their tasks."""
        with self._lock:
            agent = next((a for a in self._doc["slaves"] if a.get("id") == agent_id), None)
            if agent is None:
                return None
            frameworks: list[dict[str, Any]] = []
            completed: list[dict[str, Any]] = []
            for framework in self._all_frameworks():
                executors = _executors(agent_id, framework)
                if not executors:
                    continue
                entry = {"id": framework["id"], "name": framework.get("name", "")}
                entry["role"] = framework.get("role", "*")
                if framework in self._doc.get("completed_frameworks", []):
                    completed.append(entry | {"executors": [], "completed_executors": executors})
                else:
                    frameworks.append(entry | {"executors": executors, "completed_executors": []})
            return {
                "id": agent_id,
                "pid": agent["pid"],
                "hostname": agent.get("hostname"),
                "version": agent.get("version", model.MESOS_VERSION),
                "frameworks": frameworks,
                "completed_frameworks": completed,
            }

    # Internals ---------------------------------------------------------------------------------

    def _changed(self) -> None:
        self._raw = None
        self._doc["activated_slaves"] = sum(1 for a in self._doc["slaves"] if a.get("active"))

    def _framework(self, framework_id: str) -> dict[str, Any]:
        for framework in self._all_frameworks():
            if framework.get("id") == framework_id:
                return framework
        raise KeyError(f"no framework {framework_id!r}")

    def _all_frameworks(self) -> list[dict[str, Any]]:
        return [*self._doc.get("frameworks", []), *self._doc.get("completed_frameworks", [])]

    def _tasks(self) -> list[dict[str, Any]]:
        found = [t for f in self._all_frameworks() for key in TASK_LISTS for t in f.get(key, [])]
        return found + list(self._doc.get("orphan_tasks", []))


def _leader_fields(leader: SimMaster) -> dict[str, Any]:
    info = {"id": leader.id, "pid": leader.pid, "port": leader.port, "hostname": leader.host}
    return {
        "id": leader.id,
        "pid": leader.pid,
        "hostname": leader.host,
        "leader": leader.pid,
        "leader_info": info,
    }


def _state_counts(tasks: list[dict[str, Any]]) -> dict[str, int]:
    counts = dict.fromkeys(model.TASK_STATES, 0)
    for task in tasks:
        if task.get("state") in counts:
            counts[task["state"]] += 1
    return counts


def _started(task: dict[str, Any]) -> float:
    statuses = task.get("statuses") or [{}]
    return float(statuses[0].get("timestamp") or 0.0)


def _executors(agent_id: str, framework: dict[str, Any]) -> list[dict[str, Any]]:
    executors: dict[str, dict[str, Any]] = {}
    for key in TASK_LISTS:
        for task in framework.get(key) or []:
            if task.get("slave_id") != agent_id:
                continue
            executor_id = task.get("executor_id") or task["id"]
            executor = executors.get(executor_id)
            if executor is None:
                container = _outermost(task)
                executor = executors[executor_id] = {
                    "id": executor_id,
                    "name": "",
                    "source": executor_id,
                    "container": container,
                    "directory": f"/var/lib/mesos/slave/slaves/{agent_id}/frameworks/"
                    f"{framework['id']}/executors/{executor_id}/runs/{container}",
                    "tasks": [],
                    "queued_tasks": [],
                    "completed_tasks": [],
                }
            executor["completed_tasks" if key == "completed_tasks" else "tasks"].append(task)
    return list(executors.values())


def _outermost(task: dict[str, Any]) -> str:
    container: dict[str, Any] = {}
    for status in task.get("statuses") or []:
        container = (status.get("container_status") or {}).get("container_id") or container
    while isinstance(container.get("parent"), dict):
        container = container["parent"]
    return str(container.get("value", ""))
