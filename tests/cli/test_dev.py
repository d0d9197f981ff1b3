"""`logway dev` (what `make run` starts): its printed commands work; Ctrl-C cleans up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.devcluster.journald import JournaldNamespace
from tests.conftest import free_port, journald_available, new_namespace_name

pytestmark = pytest.mark.skipif(not journald_available(), reason="needs root and journald")


def test_dev_prints_working_commands_and_stops_cleanly(tmp_path: Path) -> None:
    namespace = new_namespace_name()
    port = free_port("127.0.0.3")
    gateway_port = free_port("127.0.0.3")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "app.cli.main",
            "dev",
            "--host=127.0.0.3",
            f"--port={port}",
            f"--namespace={namespace}",
            "--gateway-host=127.0.0.3",
            f"--gateway-port={gateway_port}",
            f"--data-dir={tmp_path / 'dev'}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=Path(__file__).resolve().parents[2],
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = proc.stdout.readline().decode()
            assert line, "logway dev exited: " + "".join(lines)
            lines.append(line)
            if "Ctrl-C stops everything" in line:
                break
        commands = [ln.strip() for ln in lines if ln.strip().startswith(("export ", "curl -s "))]
        export, last10, ndjson = commands[0], commands[1], commands[2]
        time.sleep(1.5)  # the sample tasks write a line per second
        out = subprocess.run(
            ["bash", "-c", f"{export}; {last10}"], capture_output=True, text=True, check=True
        ).stdout
        assert "request" in out
        out = subprocess.run(
            ["bash", "-c", f"{export}; {ndjson}"], capture_output=True, text=True, check=True
        ).stdout
        assert '"CONTAINER_ID":"dev-container-web"' in out
        assert '"STREAM":"STDOUT"' in out
        login = next(ln.strip() for ln in lines if " login --url " in ln)
        env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
        out = subprocess.run(
            ["bash", "-c", login], capture_output=True, text=True, check=True, env=env
        ).stdout
        assert "logged in" in out
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(20)
        assert proc.stdout is not None
        proc.stdout.close()
    assert code == 0
    assert not JournaldNamespace(namespace).directory.exists()
    leftovers = subprocess.run(
        ["pgrep", "-f", namespace], capture_output=True, text=True
    ).stdout.split()
    assert [pid for pid in leftovers if int(pid) != os.getpid()] == []
