"""The systemd units in deploy/ pass `systemd-analyze verify`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
UNITS = sorted(DEPLOY.glob("*.service"))


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_unit_verifies(unit: Path, tmp_path: Path) -> None:
    # The unit names /opt/logway/bin/logway; point it at this checkout's entry point,
    # which verify requires to exist.
    logway = Path(sys.executable).with_name("logway")
    text = unit.read_text().replace("/opt/logway/bin/logway", str(logway))
    copy = tmp_path / unit.name
    copy.write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, check=False
    )
    problems = [
        line for line in result.stderr.splitlines() if unit.name in line or "logway" in line.lower()
    ]
    assert result.returncode == 0, result.stderr
    assert problems == [], problems


def test_the_node_reader_unit_exists() -> None:
    assert "logway-node.service" in [u.name for u in UNITS]
