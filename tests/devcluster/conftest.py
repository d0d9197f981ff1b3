"""Simulated Mesos masters, shared with tests/cluster."""

from tests.cluster.support import cluster, sim  # noqa: F401 (fixtures)
