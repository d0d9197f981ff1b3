"""Fixtures shared by tests/cluster and tests/devcluster (each conftest imports them): the
captured DC/OS 1.10 master state (read from `shared/` beside the clone), simulated Mesos
masters on 127.0.0.2-4, and settings and an httpx client to read them with."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from app.cluster import ClusterSettings, ClusterSnapshot, build_snapshot
from app.devcluster.mesos import MesosSimulator, SimCluster

MASTERS = [("127.0.0.2", 0), ("127.0.0.3", 0), ("127.0.0.4", 0)]

# Fast enough for tests; the defaults are Admin Router's (25 s, 75 s, 3 days).
FAST = ClusterSettings(
    masters=("http://127.0.0.1:1",),  # replaced per test by the simulator's URLs
    poll_period=60.0,
    soft_limit=30.0,
    hard_limit=60.0,
    request_timeout=2.0,
    refresh_min_interval=5.0,
)

FIXTURE = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "fixtures"
    / "mesos"
    / "dcos-1.10-master-state.json"
)


def fixture_path() -> Path:
    if not FIXTURE.is_file():
        pytest.skip(f"Mesos state fixture not found at {FIXTURE} (shared/ beside the clone)")
    return FIXTURE


@pytest.fixture
def cluster() -> SimCluster:
    return SimCluster.sample(agent_ips=("10.0.0.1", "10.0.0.2"))


@pytest.fixture
def sim(cluster: SimCluster) -> Iterator[MesosSimulator]:
    """Three masters on 127.0.0.2-4, master 0 leading."""
    with MesosSimulator(cluster, masters=MASTERS) as simulator:
        yield simulator


@pytest.fixture
def fixture_snapshot() -> ClusterSnapshot:
    return build_snapshot(fixture_path().read_bytes(), reader_scheme="http", reader_port=61001)


@pytest.fixture
def settings(sim: MesosSimulator) -> ClusterSettings:
    return replace(FAST, masters=tuple(sim.urls))


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as http:
        yield http
