"""The seams other layers depend on (ARCHITECTURE §2): `ClusterState` implements the first
four (`Cluster` is all of them) and reads the Mesos leader through a `StateFetcher`."""

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


class ClusterHealth(Protocol):
    """How usable the cached state is, for readiness and metrics."""

    @property
    def last_error(self) -> str | None: ...

    def age(self) -> float | None:
        """Seconds since the current snapshot was loaded; None before the first."""
        ...


class Cluster(ClusterStateSource, NodeResolver, TaskFinder, ClusterHealth, Protocol):
    """Everything the gateway's routes ask of the cluster layer."""


class StateFetcher(Protocol):
    """One read of the Mesos leader's state (`MesosClient`; a fake in unit tests)."""

    @property
    def leader_url(self) -> str | None:
        """The master that answered last, for logs; None before any answer."""
        ...

    async def fetch(self) -> ClusterSnapshot:
        """The leader's state, indexed; `MesosError` naming every failed attempt."""
        ...
