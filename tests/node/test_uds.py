"""`logway node --uds PATH` and `--journal-dir DIR`."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx

from app.devcluster.journald import JournaldNamespace
from tests.support.journal import Sender
from tests.support.servers import stop


def test_unix_socket_over_a_journal_directory(
    journal_namespace: JournaldNamespace, tmp_path: Path
) -> None:
    sender = Sender(journal_namespace)
    sender.send({"MESSAGE": "over a unix socket", "K": "uds"})
    sender.sync()
    sender.close()
    sock = tmp_path / "node.sock"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app.cli.main",
            "node",
            f"--journal-dir={journal_namespace.directory}",
            f"--uds={sock}",
            "--no-auth",
            "--log-level=WARNING",
        ],
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(sock))) as client:
            r = client.get("http://node/v1/range/?filter=K:uds")
        assert r.status_code == 200
        assert r.text.endswith(": over a unix socket\n")
    finally:
        stop(proc)
