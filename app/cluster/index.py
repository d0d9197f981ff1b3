"""Mesos `/master/state` bytes → `ClusterSnapshot`. Pure and blocking: run it off the loop.

Shapes per reference §8 and the DC/OS 1.10 fixture. Tasks come from `frameworks[].tasks`,
`.unreachable_tasks` and top-level `orphan_tasks` (active), and `frameworks[].completed_tasks`
and everything under `completed_frameworks` (completed). Agents come from `slaves` only: a
`recovered_slaves` entry has no `pid`, so no address we could trust. The parsed document is
kept in the snapshot, with each task's place in it, for the routes that serve the state.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterator, Sequence
from types import MappingProxyType
from typing import Any

import orjson

from app.cluster.marathon import app_id
from app.cluster.model import Agent, ClusterSnapshot, Framework, Master, StatePath, Task

log = logging.getLogger(__name__)

DEFAULT_ROLE = "*"
MAX_CONTAINER_DEPTH = 32  # Mesos nests a pod's containers two deep; anything past this is junk


class BadState(ValueError):
    """The document is not a leading master's state."""


class NotLeader(BadState):
    """A master answered with its state but another master leads (`leader` names it);
    `leader` is that master's (host, port), None when no leader is elected."""

    def __init__(self, message: str, leader: tuple[str, int] | None) -> None:
        super().__init__(message)
        self.leader = leader


def parse_pid(pid: str) -> tuple[str, int]:
    """`slave(1)@10.0.0.157:5051` → ("10.0.0.157", 5051); IPv6 may be bracketed."""
    _, at, address = pid.rpartition("@")
    host, colon, port = address.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not at or not colon or not port.isdecimal():
        raise BadState(f"malformed pid {pid!r}")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise BadState(f"pid {pid!r} has no IP address") from None
    if not 0 < int(port) < 65536:
        raise BadState(f"pid {pid!r} has a bad port")
    return ip.compressed, int(port)


def node_url(scheme: str, ip: str, port: int) -> str:
    host = f"[{ip}]" if ":" in ip else ip
    return f"{scheme}://{host}:{port}"


def build_snapshot(
    body: bytes, *, reader_scheme: str, reader_port: int, masters: Sequence[str] = ()
) -> ClusterSnapshot:
    """`masters`: IP addresses of the masters the gateway polls (configuration, trusted), which
    the snapshot knows as masters beside the leader the state names."""
    try:
        state = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadState(f"not JSON: {exc}") from None
    try:
        return _Builder(reader_scheme, reader_port, tuple(masters)).build(_obj(state))
    except BadState:
        raise
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise BadState(f"unexpected state shape ({type(exc).__name__}: {exc})") from None


class _Builder:
    def __init__(self, scheme: str, reader_port: int, masters: tuple[str, ...] = ()) -> None:
        self.scheme = scheme
        self.reader_port = reader_port
        self.masters = masters

    def build(self, state: dict[str, Any]) -> ClusterSnapshot:
        _check_leading(state)
        frameworks: dict[str, Framework] = {}
        for _, raw, completed in _frameworks(state):
            framework = _framework(raw, completed)
            frameworks.setdefault(framework.id, framework)
        indexed = []
        task_at: dict[StatePath, Task] = {}
        for path, raw, completed in _raw_tasks(state):
            try:
                task, when = self._task(raw, completed, frameworks)
            except BadState as exc:
                log.warning("Mesos task %r skipped: %s", raw.get("id"), exc)
                continue
            indexed.append((task, when))
            task_at[path] = task
        # Stable: active tasks first, each group in the document's order.
        all_tasks = sorted(indexed, key=lambda pair: pair[0].completed)
        tasks: dict[str, Task] = {}
        latest: dict[str, float] = {}
        by_name: dict[str, list[Task]] = {}
        for task, when in all_tasks:
            kept = tasks.get(task.id)
            if kept is None or (kept.completed and task.completed and when > latest[task.id]):
                tasks[task.id] = task
                latest[task.id] = when
            by_name.setdefault(task.name, []).append(task)
        leader = self._leader(state)
        return ClusterSnapshot(
            master_id=_str(state, "id"),
            leader=leader,
            agents=MappingProxyType(dict(self._agents(state))),
            frameworks=MappingProxyType(frameworks),
            tasks=MappingProxyType(tasks),
            all_tasks=tuple(task for task, _ in all_tasks),
            by_name=MappingProxyType({k: tuple(v) for k, v in by_name.items()}),
            state=state,
            task_at=MappingProxyType(task_at),
            masters=(leader, *self._others(leader)),
        )

    def _others(self, leader: Master) -> Iterator[Master]:
        for ip in self.masters:
            if ip != leader.ip:
                reader_url = node_url(self.scheme, ip, self.reader_port)
                yield Master(id="", hostname=ip, ip=ip, port=0, reader_url=reader_url)

    def _leader(self, state: dict[str, Any]) -> Master:
        info = state.get("leader_info")
        pid = info.get("pid") if isinstance(info, dict) else None
        pid = pid or state.get("leader")
        if not isinstance(pid, str) or not pid:
            raise BadState("the state names no leader")
        ip, port = parse_pid(pid)
        hostname = info.get("hostname") if isinstance(info, dict) else None
        leader_id = info.get("id") if isinstance(info, dict) else None
        return Master(
            id=leader_id if isinstance(leader_id, str) else _str(state, "id"),
            hostname=hostname if isinstance(hostname, str) and hostname else ip,
            ip=ip,
            port=port,
            reader_url=node_url(self.scheme, ip, self.reader_port),
        )

    def _agents(self, state: dict[str, Any]) -> Iterator[tuple[str, Agent]]:
        for raw in _list(state, "slaves"):
            agent = _obj(raw)
            try:
                ip, port = parse_pid(_str(agent, "pid"))
            except BadState as exc:
                log.warning("Mesos agent %r skipped: %s", agent.get("id"), exc)
                continue
            agent_id = _str(agent, "id")
            yield (
                agent_id,
                Agent(
                    id=agent_id,
                    hostname=str(agent.get("hostname") or ip),
                    ip=ip,
                    port=port,
                    reader_url=node_url(self.scheme, ip, self.reader_port),
                    active=agent.get("active") is not False,
                ),
            )

    def _task(
        self,
        raw: dict[str, Any],
        completed: bool,
        frameworks: dict[str, Framework],
    ) -> tuple[Task, float]:
        task_id = _str(raw, "id")
        framework_id = _str(raw, "framework_id")
        framework = frameworks.get(framework_id)
        executor_id = raw.get("executor_id") or ""
        chain, when = _container_chain(raw)
        labels = [label for label in raw.get("labels") or () if isinstance(label, dict)]
        task = Task(
            id=task_id,
            name=str(raw.get("name") or ""),
            state=str(raw.get("state") or ""),
            agent_id=_str(raw, "slave_id"),
            framework_id=framework_id,
            executor_id=str(executor_id) or task_id,
            command_executor=not executor_id,
            container_chain=chain,
            app_id=app_id(task_id, labels, framework.name if framework else ""),
            role=str(raw.get("role") or (framework.role if framework else DEFAULT_ROLE)),
            completed=completed,
        )
        return task, when


def _check_leading(state: dict[str, Any]) -> None:
    """Old masters served their (stale) state while not leading; only the leader's counts."""
    own, leader = state.get("pid"), state.get("leader")
    if not isinstance(leader, str) or not leader:
        raise NotLeader(f"master {own!r} knows no leader", None)
    if isinstance(own, str) and own and own != leader:
        info = state.get("leader_info")
        host, port = parse_pid(leader)
        if isinstance(info, dict) and isinstance(info.get("hostname"), str) and info["hostname"]:
            host = info["hostname"]
        raise NotLeader(f"master {own!r} is not the leader {leader!r}", (host, port))


def _frameworks(state: dict[str, Any]) -> Iterator[tuple[StatePath, dict[str, Any], bool]]:
    for key, completed in (("frameworks", False), ("completed_frameworks", True)):
        for index, raw in enumerate(_list(state, key)):
            yield (key, index), _obj(raw), completed


def _raw_tasks(state: dict[str, Any]) -> Iterator[tuple[StatePath, dict[str, Any], bool]]:
    for path, framework, framework_completed in _frameworks(state):
        for key, completed in (
            ("tasks", False),
            ("unreachable_tasks", False),
            ("completed_tasks", True),
        ):
            for index, raw in enumerate(_list(framework, key)):
                yield (*path, key, index), _obj(raw), completed or framework_completed
    for index, raw in enumerate(_list(state, "orphan_tasks")):
        yield ("orphan_tasks", index), _obj(raw), False


def _framework(raw: dict[str, Any], completed: bool) -> Framework:
    roles = raw.get("roles")
    role = raw.get("role") or (roles[0] if isinstance(roles, list) and roles else DEFAULT_ROLE)
    return Framework(
        id=_str(raw, "id"),
        name=str(raw.get("name") or ""),
        role=str(role),
        completed=completed,
        active=not completed and raw.get("active") is True,
        scheduler_host=_scheduler_host(raw),
    )


def _scheduler_host(raw: dict[str, Any]) -> str | None:
    """The host of the scheduler's `pid`, else its `hostname` (None when it names neither)."""
    pid = raw.get("pid")
    if isinstance(pid, str) and pid:
        try:
            return parse_pid(pid)[0]
        except BadState:
            pass
    hostname = raw.get("hostname")
    return hostname if isinstance(hostname, str) and hostname else None


def _container_chain(task: dict[str, Any]) -> tuple[tuple[str, ...], float]:
    """The container ids (outermost first) of the status whose state is the task's state,
    else of the latest status that has one (the dcos CLI's rule, reference §7); and the
    latest status timestamp (orders reused task ids)."""
    chosen: tuple[str, ...] = ()
    fallback: tuple[tuple[float, int], tuple[str, ...]] | None = None
    latest = 0.0
    for index, raw in enumerate(task.get("statuses") or ()):
        status = _obj(raw)
        when = status.get("timestamp")
        when = float(when) if isinstance(when, int | float) else 0.0
        latest = max(latest, when)
        container_status = status.get("container_status")
        chain = _chain(container_status.get("container_id")) if container_status else ()
        if not chain:
            continue
        if status.get("state") == task.get("state"):
            chosen = chain
        if fallback is None or (when, index) >= fallback[0]:
            fallback = ((when, index), chain)
    if not chosen and fallback is not None:
        chosen = fallback[1]
    return chosen, latest


def _chain(container_id: object) -> tuple[str, ...]:
    ids: list[str] = []
    while isinstance(container_id, dict) and len(ids) < MAX_CONTAINER_DEPTH:
        value = container_id.get("value")
        if not isinstance(value, str) or not value:
            break
        ids.append(value)
        container_id = container_id.get("parent")
    return tuple(reversed(ids))


def _obj(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadState(f"expected an object, got {type(value).__name__}")
    return value


def _list(obj: dict[str, Any], key: str) -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadState(f"{key!r} is not a list")
    return value


def _str(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise BadState(f"missing {key!r}")
    return value
