"""The captured DC/OS 1.10 master state, read from `shared/` beside the clone."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURE = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "fixtures"
    / "mesos"
    / "dcos-1.10-master-state.json"
)


def fixture_path() -> Path:
    if not FIXTURE.is_file():
        pytest.skip(f"Mesos state fixture not found at {FIXTURE} (shared/ beside the clone)")
    return FIXTURE
