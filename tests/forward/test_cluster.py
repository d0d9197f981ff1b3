"""`cluster` (every node's journal, the master's included) into rotated NDJSON files, with
`logway forward status` and the Prometheus metrics; a task's stream; SIGTERM saves."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import orjson

from app.devcluster.commands import logway_argv
from app.forward.position import read_status
from tests.conftest import free_port
from tests.forward.support import (
    AGENTS,
    GATEWAY_HOST,
    MASTER_HOST,
    RUN,
    WEB,
    Env,
    new_run,
    wait_for,
)


def _events(out: Path) -> list[dict[str, object]]:
    files = sorted(out.parent.glob(out.name + "*"), key=lambda p: p.stat().st_mtime)
    return [orjson.loads(line) for f in files for line in f.read_bytes().splitlines()]


def test_cluster_reads_every_node_and_reports_its_progress(env: Env, tmp_path: Path) -> None:
    run = new_run()
    for key in ("master", *AGENTS):
        for n in range(20):
            env.senders[key].send({"MESSAGE": f"{key} {n}", RUN: run, "SYSLOG_IDENTIFIER": "c"})
    env.sync()
    out = tmp_path / "out" / "cluster.ndjson"
    state = tmp_path / "state.json"
    port = free_port(GATEWAY_HOST)
    args = ("cluster", "--to", f"file://{out}?max_bytes=4000&keep=50", "--state", str(state))
    args += ("--filter", f"{RUN}:{run}", "--metrics", f"{GATEWAY_HOST}:{port}", "--batch", "5")
    with env.forward(*args) as fwd:
        wait_for("60 lines", lambda: len(_events(out)) >= 60 or None)
        metrics = httpx.get(f"http://{GATEWAY_HOST}:{port}/metrics").text
        assert 'logway_forward_entries_total{pipeline="cluster"} 60' in metrics
        # The status file is rewritten at most once a second: wait for the last batch in it.
        wait_for(
            "the status of 60", lambda: (read_status(state) or {}).get("entries") == 60 or None
        )
        status = subprocess.run(
            logway_argv("forward", "status", "--state", str(state)),
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "running" in status
        assert f"master:{MASTER_HOST}: s=" in status
        assert f"agent:{AGENTS[0]}: s=" in status
        assert fwd.terminate() == 0
    messages = {e["message"] for e in _events(out)}
    assert messages == {f"{k} {n}" for k in ("master", *AGENTS) for n in range(20)}
    assert len(list(out.parent.iterdir())) > 2  # rotated by size
    saved = orjson.loads(state.read_bytes())["positions"]
    assert set(saved) == {f"master:{MASTER_HOST}", *(f"agent:{a}" for a in AGENTS)}


def test_a_tasks_stream_is_forwarded(env: Env, tmp_path: Path) -> None:
    run = new_run()
    env.write(WEB, run, 10)
    env.sync()
    out = tmp_path / "task.ndjson"
    args = ("task", WEB.task_id, "--to", f"file://{out}", "--state", str(tmp_path / "s.json"))
    with env.forward(*args, "--filter", f"{RUN}:{run}") as fwd:
        wait_for("10 lines", lambda: (out.exists() and len(_events(out)) >= 10) or None)
        assert fwd.terminate() == 0
    events = _events(out)
    assert [e["message"] for e in events] == [f"/prod/web web-0 line {n}" for n in range(10)]
    assert events[0]["container_id"] == WEB.container
    assert str(events[0]["@timestamp"]).startswith("20")  # from the cursor


def test_sigterm_while_a_sink_fails_exits_0_without_saving(env: Env, tmp_path: Path) -> None:
    run = new_run()
    env.write(WEB, run, 3)
    env.sync()
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    state = tmp_path / "s.json"
    args = ("app", "/prod/web", "--to", f"file://{blocker}/out.ndjson", "--state", str(state))
    with env.forward(*args, "--filter", f"{RUN}:{run}") as fwd:
        wait_for("a retry", lambda: "retrying" in fwd.output() or None)
        assert fwd.terminate(timeout=20) == 0
        assert "sent again" in fwd.output()
    assert not state.exists()  # nothing was accepted: nothing is marked as sent
