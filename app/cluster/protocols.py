"""The seams other layers depend on (ARCHITECTURE §2); `ClusterState` implements all three."""

from __future__ import annotations

from typing import Protocol

from app.cluster.model import Agent, ClusterSnapshot, Master, Task
from app.cluster.scheduler import SchedulerNode


class ClusterStateSource(Protocol):
    async def snapshot(self) -> ClusterSnapshot:
        """The current snapshot; `Unavailable` (503) when there is no usable one."""
        ...


class NodeResolver(Protocol):
    """Where a node's reader listens, from the cluster state only."""

    async def resolve_agent(self, agent_id: str) -> Agent:
        """`InvalidId`/`NotFound` (404) for a malformed or unknown id, `Unavailable` (503)."""
        ...

    async def resolve_leader(self) -> Master: ...

    async def resolve_scheduler(self, name: str) -> SchedulerNode:
        """Where framework `name`'s scheduler leads; `SchedulerUnknown` (503) otherwise."""
        ...


class TaskFinder(Protocol):
    async def find_task(self, query: str) -> Task:
        """`NotFound` (404), `Ambiguous` (409) listing candidate ids, `Unavailable` (503)."""
        ...
