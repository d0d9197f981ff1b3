"""The per-identity cap on follow streams (`max_follows_per_identity`): a real gateway over
real node readers and journald; one caller's follows beyond the cap are 429 with Retry-After
naming the setting, another caller is not affected, ranges never count, and a follow that
ends gives its slot back."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import journald_available
from tests.gateway.support import FAULT_AGENTS, FaultCluster, add_user, fault_cluster, grant
from tests.support.wait import wait_for

pytestmark = pytest.mark.skipif(not journald_available(), reason="needs root and journald")

CAP = 2
AGENT = FAULT_AGENTS[0]
STREAM = f"/system/v1/agent/{AGENT}/logs/v1/stream/?skip_prev=1"
RANGE = f"/system/v1/agent/{AGENT}/logs/v1/range/?skip_prev=1"
SSE = {"Accept": "text/event-stream"}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FaultCluster, str]]:
    with fault_cluster(tmp_path_factory.mktemp("follow-cap")) as cluster:
        settings = {"LOGWAY_GATEWAY_MAX_FOLLOWS_PER_IDENTITY": str(CAP)}
        with cluster.gateway(settings=settings) as base:
            yield cluster, base


def reader(base: str, uid: str, admin: dict[str, str]) -> dict[str, str]:
    headers = add_user(base, admin, uid, f"{uid} password")
    grant(base, admin, "dcos:adminrouter:ops:system-logs", uid)
    return headers


@contextlib.contextmanager
def following(client: httpx.Client, path: str, headers: dict[str, str]) -> Iterator[httpx.Response]:
    """A follow held open (its first event read) until the block ends; a refusal read whole."""
    with client.stream("GET", path, headers={**headers, **SSE}) as r:
        lines = r.iter_lines()  # kept: closing the iterator would close the connection
        if r.status_code == 200:
            next(lines)
        else:
            r.read()
        yield r


def test_follows_beyond_the_cap_are_429_and_slots_come_back(
    env: tuple[FaultCluster, str], tmp_path: Path
) -> None:
    cluster, base = env
    ops = reader(base, "cap-ops", cluster.admin)
    other = reader(base, "cap-other", cluster.admin)
    with httpx.Client(base_url=base, timeout=30) as client, contextlib.ExitStack() as held:
        wait_for("the agent", lambda: client.get(RANGE, headers=ops).status_code == 200 or None)
        for _ in range(CAP):
            assert held.enter_context(following(client, STREAM, ops)).status_code == 200
        with following(client, STREAM, ops) as refused:
            assert refused.status_code == 429, refused.text
            assert refused.headers["retry-after"].isdigit()
            assert "max_follows_per_identity=2" in refused.text
            assert "cap-ops" in refused.text
        # Ranges never count, and other callers have their own slots.
        assert client.get(RANGE, headers=ops).status_code == 200
        with following(client, STREAM, other) as r:
            assert r.status_code == 200
        # A range in SSE form ends by itself: not a follow, not counted.
        assert client.get(RANGE, headers={**ops, **SSE}).status_code == 200
    # Every follow ended: the slots are free again.
    with httpx.Client(base_url=base, timeout=30) as client:

        def opens() -> bool | None:
            with following(client, STREAM, ops) as r:
                return True if r.status_code == 200 else None

        wait_for("a freed slot", opens)
