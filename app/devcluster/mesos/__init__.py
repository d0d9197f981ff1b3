"""A Mesos master simulator: dev and test infrastructure serving the real Mesos JSON shapes
(reference §8), so the gateway's Mesos client runs unchanged against it and a real master."""

from app.devcluster.mesos.control import Fault, RecordedRequest
from app.devcluster.mesos.document import StateDocument
from app.devcluster.mesos.model import SimAgent, SimCluster, SimFramework, SimMaster, SimTask
from app.devcluster.mesos.server import MesosSimulator

__all__ = [
    "Fault",
    "MesosSimulator",
    "RecordedRequest",
    "SimAgent",
    "SimCluster",
    "SimFramework",
    "SimMaster",
    "SimTask",
    "StateDocument",
]
