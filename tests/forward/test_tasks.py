"""Every record of a task carries its app id and role from the cluster state the gateway
serves, whether or not the entry names them: the lookup (a fake gateway), and a node's
stream forwarded through the real gateway."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson

from app.devcluster.mesos import SimMaster
from app.devcluster.mesos.document import StateDocument
from app.forward.record import Record
from app.forward.source import SourceFailed
from app.forward.tasks import STATE_PATH, TaskLabels
from tests.forward.support import DEV, RUN, WEB, Env, new_run, sim_cluster, wait_for

CURSOR = "s=abc;i=1f;b=2e61;m=7b;t=661fef0da1a5a;x=9"


def _record(**fields: str) -> Record:
    return Record(fields, CURSOR, 0)


class FakeGateway:
    def __init__(self) -> None:
        self.body = StateDocument.from_cluster(sim_cluster()).state(SimMaster("127.64.0.1", 5050))
        self.calls = 0
        self.fail = False

    async def get(self, path: str) -> bytes:
        assert path == STATE_PATH
        self.calls += 1
        if self.fail:
            raise SourceFailed("the gateway answered 503")
        return self.body


def test_a_tasks_lines_get_its_app_and_role_and_the_state_is_read_only_for_new_tasks() -> None:
    gateway, notes, now = FakeGateway(), list[str](), [0.0]
    labels = TaskLabels(gateway.get, note=notes.append, clock=lambda: now[0])
    batch = [
        _record(MESSAGE="w", TASK_ID=WEB.task_id),
        _record(MESSAGE="d", TASK_ID=DEV.task_id, DCOS_SPACE="/claimed", ROLE="claimed"),
        _record(MESSAGE="a system line"),
    ]
    out = asyncio.run(labels.label(batch))
    expected = [("/prod/web", "prod"), ("/dev/worker", "dev"), (None, None)]
    assert [(r.app_id, r.role) for r in out] == expected
    # The state's labels win over what a line claims; a line without a task keeps its own.
    assert out[1].event()["app_id"] == "/dev/worker"
    assert "app_id" not in out[2].event()
    assert _record(MESSAGE="x", DCOS_SPACE="/own").event()["app_id"] == "/own"
    asyncio.run(labels.label(batch))
    assert gateway.calls == 1  # every task known: no read
    unknown = [_record(MESSAGE="n", TASK_ID="new-task")]
    assert asyncio.run(labels.label(unknown))[0].app_id is None
    assert gateway.calls == 1  # within the minimum interval
    now[0] = 10.0
    gateway.fail = True
    asyncio.run(labels.label(unknown))
    assert gateway.calls == 2
    assert "503" in notes[-1]
    assert asyncio.run(labels.label(batch))[0].app_id == "/prod/web"  # still known


def test_a_nodes_stream_carries_the_app_and_role_of_each_task(env: Env, tmp_path: Path) -> None:
    """The shipper's lines carry TASK_ID and no DCOS_SPACE or ROLE."""
    run = new_run()
    env.write(WEB, run, 3)
    env.write(DEV, run, 3)
    env.senders[WEB.agent_id].send({"MESSAGE": "no task", RUN: run})
    env.sync()
    out = tmp_path / "agent.ndjson"
    args = ("agent", WEB.agent_id, "--to", f"file://{out}", "--state", str(tmp_path / "s.json"))
    with env.forward(*args, "--filter", f"{RUN}:{run}") as fwd:
        wait_for(
            "7 lines", lambda: (out.exists() and len(out.read_bytes().splitlines()) >= 7) or None
        )
        assert fwd.terminate() == 0
    events = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    labels = {(e["message"].split(" line ")[0], e.get("app_id"), e.get("role")) for e in events}
    assert labels == {
        ("/prod/web web-0", "/prod/web", "prod"),
        ("/dev/worker dev-0", "/dev/worker", "dev"),
        ("no task", None, None),
    }
