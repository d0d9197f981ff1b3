"""Simulated Mesos masters on loopback addresses, settings and a client to read them."""

from tests.cluster.support import (  # noqa: F401 (fixtures)
    client,
    cluster,
    fixture_snapshot,
    settings,
    sim,
)
