"""The cluster layer: the Mesos leader's state, polled, indexed and cached (ARCHITECTURE §2)."""

from app.cluster.errors import Ambiguous, InvalidId, MesosError
from app.cluster.index import BadState, build_snapshot
from app.cluster.mesos import MesosClient
from app.cluster.model import Agent, ClusterSnapshot, Framework, Master, Task
from app.cluster.protocols import (
    Cluster,
    ClusterHealth,
    ClusterStateSource,
    NodeResolver,
    StateFetcher,
    TaskFinder,
)
from app.cluster.settings import ClusterSettings
from app.cluster.state import ClusterState

__all__ = [
    "Agent",
    "Ambiguous",
    "BadState",
    "Cluster",
    "ClusterHealth",
    "ClusterSettings",
    "ClusterSnapshot",
    "ClusterState",
    "ClusterStateSource",
    "Framework",
    "InvalidId",
    "Master",
    "MesosClient",
    "MesosError",
    "NodeResolver",
    "StateFetcher",
    "Task",
    "TaskFinder",
    "build_snapshot",
]
