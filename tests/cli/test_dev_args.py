"""`logway dev`'s command line: bad usage exits 2 naming what was wrong, before anything starts;
without root it says so and exits 1. (The running cluster: tests/cli/test_dev.py.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def logway_dev(*args: str, user: str | None = None) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "app.cli.main", "dev", *args]
    if user is not None:
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *argv]
    return subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--agents", "0"], "argument --agents: must be a whole number from 1 to 50"),
        (["--agents", "51"], "argument --agents: must be a whole number from 1 to 50"),
        (["--agents", "two"], "argument --agents: must be a whole number from 1 to 50"),
        (
            ["--agents", "2", "--agent-ip", "127.0.0.5"],
            "argument --agent-ip: not allowed with argument --agents",
        ),
        (
            ["--master-ip", "127.0.0.250", "--agents", "5"],
            "logway dev: 5 agents after 127.0.0.250 run past 127.0.0.254",
        ),
        (["--agent-ip", "127.0.0.1"], "logway dev: the master and every agent need their own"),
    ],
)
def test_bad_usage_exits_2_naming_it(args: list[str], error: str, tmp_path: Path) -> None:
    done = logway_dev(*args, f"--data-dir={tmp_path / 'data'}")
    assert done.returncode == 2, done
    assert error in done.stderr, done.stderr
    assert done.stdout == ""
    assert not (tmp_path / "data").exists()  # nothing made


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root to drop it"
)
def test_without_root_it_says_so(tmp_path: Path) -> None:
    done = logway_dev(f"--data-dir={tmp_path / 'data'}", user="65534")  # nobody
    assert done.returncode == 1, done
    assert "logway dev needs root" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "data").exists()
