"""The journald namespace manager: a real `systemd-journald NAMESPACE`."""

from __future__ import annotations

import subprocess
import time

import pytest

from app.devcluster.journald import JournaldNamespace
from tests.conftest import journald_available, new_namespace_name
from tests.support.journal import Sender

pytestmark = pytest.mark.skipif(not journald_available(), reason="needs root and journald")


def entries(ns: JournaldNamespace) -> list[str]:
    out = subprocess.run(
        ["journalctl", f"--namespace={ns.name}", "-o", "cat"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.splitlines()


def test_stays_up_past_journald_idle_timeout_and_cleans_up() -> None:
    # journald quits a namespace after 30 s without stream clients; ours must not.
    with JournaldNamespace(new_namespace_name()) as ns:
        sender = Sender(ns)
        sender.send({"MESSAGE": "before"})
        time.sleep(33)
        assert ns._proc is not None
        assert ns._proc.poll() is None
        sender.send({"MESSAGE": "after"})
        sender.sync()
        sender.close()
        lines = entries(ns)
        assert "before" in lines
        assert "after" in lines
        assert not any("stopped" in line.lower() for line in lines)
        directory, conf = ns.directory, ns.conf_path
    assert not directory.exists()
    assert not conf.exists()
