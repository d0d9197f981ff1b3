"""The Journal Export Format into `systemd-journal-remote` (passive mode): the received
journal, read back with `journalctl --file`, holds every field of every entry, byte for
byte."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.forward.receivers import journal_remote, journalctl_available
from tests.forward.support import AGENTS, JOURNAL_HOST, RUN, Env, new_run, wait_for

pytestmark = pytest.mark.skipif(not journalctl_available(), reason="needs journal-remote")

BINARY = b"bytes \xff\xfe not utf-8"


def _journal(path: Path, run: str) -> list[dict[str, object]]:
    if not path.exists():
        return []
    out = subprocess.run(
        ["journalctl", f"--file={path}", "-o", "json", f"{RUN}={run}"],
        capture_output=True,
        check=False,
    ).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_every_field_arrives_byte_for_byte(env: Env, tmp_path: Path) -> None:
    run = new_run()
    sender = env.senders[AGENTS[1]]
    for n in range(10):
        sender.send(
            {
                "MESSAGE": f"line {n}\nwith a second line",
                "PRIORITY": "3",
                "SYSLOG_IDENTIFIER": "remote-test",
                "CUSTOM_FIELD": f"value={n} <&>",
                "BLOB": BINARY,
                RUN: run,
            }
        )
    sender.sync()
    # What the node holds, read through the gateway (the reference to compare with).
    r = httpx.get(
        f"{env.base}/system/v1/agent/{AGENTS[1]}/logs/v1/range/",
        params={"filter": f"{RUN}:{run}"},
        headers={**env.admin, "Accept": "application/json"},
    )
    source = [json.loads(line)["fields"] for line in r.text.splitlines()]
    assert len(source) == 10
    with journal_remote(tmp_path, JOURNAL_HOST) as (port, output):
        url = f"journal-remote+http://{JOURNAL_HOST}:{port}"
        args = ("agent", AGENTS[1], "--to", url, "--state", str(tmp_path / "s.json"))
        with env.forward(*args, "--filter", f"{RUN}:{run}") as fwd:
            wait_for("10 entries", lambda: len(_journal(output, run)) >= 10 or None)
            assert fwd.terminate() == 0
    received = _journal(output, run)
    assert len(received) == 10
    for sent, got in zip(source, received, strict=True):
        for name, value in sent.items():
            # journalctl shows binary values as byte lists, as the gateway does.
            assert got.get(name) == value, (name, value, got.get(name))
    assert bytes(received[0]["BLOB"]) == BINARY  # type: ignore[arg-type]
    assert received[0]["MESSAGE"] == "line 0\nwith a second line"
