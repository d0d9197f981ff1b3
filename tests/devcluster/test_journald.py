"""The journald namespace manager: a real `systemd-journald NAMESPACE`."""

from __future__ import annotations

import subprocess

import pytest

from app.devcluster.journald import JournaldNamespace
from tests.conftest import journald_available, new_namespace_name
from tests.support.journal import Sender
from tests.support.wait import wait_for

pytestmark = pytest.mark.skipif(not journald_available(), reason="needs root and journald")


def entries(ns: JournaldNamespace) -> list[str]:
    out = subprocess.run(
        ["journalctl", f"--namespace={ns.name}", "-o", "cat"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.splitlines()


def keepalive_stream(ns: JournaldNamespace) -> bool | None:
    """Whether journald holds our keepalive as a stdout stream client: it writes one state
    file per stream it has accepted the header of (journald-stream.c, stdout_stream_save)."""
    streams = ns.runtime_dir / "streams"
    files = list(streams.iterdir()) if streams.is_dir() else []
    return any("IDENTIFIER=logway-keepalive" in f.read_text() for f in files) or None


def test_stays_up_past_journald_idle_timeout_and_cleans_up() -> None:
    # journald quits a namespace after 30 s without stream clients (server_is_idle() counts
    # its stdout streams, journald-server.c); ours must not. Rather than sleep past those
    # 30 s, wait for journald to count our keepalive stream: that is what keeps it up.
    with JournaldNamespace(new_namespace_name()) as ns:
        sender = Sender(ns)
        sender.send({"MESSAGE": "before"})
        wait_for("journald to hold the keepalive stream", lambda: keepalive_stream(ns), timeout=10)
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
