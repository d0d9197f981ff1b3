"""`cluster` reads every master's journal, not only the one the gateway's `/system/v1/logs`
reaches: two Mesos masters (the simulator answering on both, the first leading), each with
its journal and node reader, one agent, and a gateway polling both masters by IP address.
Every part real, on this module's own loopback addresses."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from app.devcluster.mesos import SimAgent, SimCluster
from tests.conftest import journald_available
from tests.forward.support import RUN, Env, forward_env, new_run, wait_for

MASTERS = ("127.64.0.1", "127.64.0.2")
AGENT_HOST = "127.64.0.3"
GATEWAY_HOST = "127.64.0.4"
MASTER_ID = "6a1e5c0d-0000-4000-8000-00000f0f0b0b"
AGENT = f"{MASTER_ID}-S0"
NODES = (*(f"master:{ip}" for ip in MASTERS), f"agent:{AGENT}")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    if not journald_available():
        pytest.skip("needs root and /lib/systemd/systemd-journald")
    cluster = SimCluster(master_id=MASTER_ID)
    cluster.agents = [SimAgent(AGENT, AGENT_HOST)]
    with forward_env(
        tmp_path_factory.mktemp("masters"),
        cluster=cluster,
        nodes=dict(zip(NODES, (*MASTERS, AGENT_HOST), strict=True)),
        masters=MASTERS,
        ready=("both masters known", lambda env: _masters(env) == list(MASTERS) or None),
        gateway_host=GATEWAY_HOST,
    ) as built:
        yield built


def _masters(env: Env) -> list[str]:
    r = httpx.get(f"{env.base}/mesos_dns/v1/hosts/master.mesos", headers=env.admin)
    return [record["ip"] for record in r.json()] if r.status_code == 200 else []


def _write(env: Env, run: str, label: str) -> None:
    for key in NODES:
        env.senders[key].send({"MESSAGE": f"{key} {label}", RUN: run, "SYSLOG_IDENTIFIER": "m"})
    env.sync()


def _messages(out: Path) -> list[str]:
    if not out.exists():
        return []
    return [orjson.loads(line)["message"] for line in out.read_bytes().splitlines()]


def test_a_master_unknown_to_the_gateway_is_404(env: Env) -> None:
    known = f"{env.base}/system/v1/master/{MASTERS[1]}/logs/v1/range/?limit=1"
    assert httpx.get(known, headers=env.admin).status_code == 200
    r = httpx.get(f"{env.base}/system/v1/master/127.64.0.9/logs/v1/range/", headers=env.admin)
    assert r.status_code == 404
    assert "master.mesos" in r.text


def test_cluster_reads_every_masters_journal(env: Env, tmp_path: Path) -> None:
    run = new_run()
    _write(env, run, "first")
    out, state = tmp_path / "cluster.ndjson", tmp_path / "state.json"
    args = ("cluster", "--to", f"file://{out}", "--state", str(state), "--filter", f"{RUN}:{run}")
    with env.forward(*args) as fwd:
        wait_for("3 lines", lambda: len(_messages(out)) >= 3 or None)
        assert fwd.terminate() == 0
    assert sorted(_messages(out)) == sorted(f"{key} first" for key in NODES)
    saved = orjson.loads(state.read_bytes())
    assert set(saved["positions"]) == set(NODES)

    # A state file from when `cluster` read one master (the leader's journal, as "master"):
    # the leader resumes there, so its journal is not sent again.
    positions = saved["positions"]
    positions["master"] = positions.pop(f"master:{MASTERS[0]}")
    state.write_bytes(orjson.dumps(saved))
    _write(env, run, "second")
    again = tmp_path / "again.ndjson"
    args = ("cluster", "--to", f"file://{again}", "--state", str(state), "--filter", f"{RUN}:{run}")
    seconds = {f"{key} second" for key in NODES}
    with env.forward(*args) as fwd:
        # Each journal's lines in order: once its "second" is in, a "first" sent again is too.
        wait_for("3 lines", lambda: seconds <= set(_messages(again)) or None)
        assert fwd.terminate() == 0
    assert sorted(_messages(again)) == sorted(seconds)
    assert set(orjson.loads(state.read_bytes())["positions"]) == set(NODES)
