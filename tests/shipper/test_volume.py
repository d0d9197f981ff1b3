"""A task writing a million lines as fast as it can loses none and reorders none.

journald, not the shipper, sets the pace (about 50,000 entries/s on a 2-CPU machine, with
journald busy on one CPU); the test takes about 25 s. For a throughput figure:

    .venv/bin/pytest -q tests/shipper/test_volume.py -rP
"""

from __future__ import annotations

import subprocess
import time

import pytest
from systemd import journal

from app.devcluster.journald import JournaldNamespace
from tests.shipper.support import PYTHON, ROOT, ship_command

pytestmark = pytest.mark.journald

PER_STREAM = 500_000
CHUNK = 10_000
TASK = f"""
import sys
out, err = sys.stdout.buffer, sys.stderr.buffer
for start in range(0, {PER_STREAM}, {CHUNK}):
    numbers = range(start, start + {CHUNK})
    out.write(b"".join(b"out %d\\n" % i for i in numbers))
    out.flush()
    err.write(b"".join(b"err %d\\n" % i for i in numbers))
    err.flush()
"""


def test_a_million_lines_all_arrive_in_order(journal_namespace: JournaldNamespace) -> None:
    started = time.monotonic()
    result = subprocess.run(
        ship_command(journal_namespace, PYTHON, "-c", TASK),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        cwd=ROOT,
        timeout=120,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    print(f"shipped {2 * PER_STREAM} lines in {elapsed:.1f} s: {2 * PER_STREAM / elapsed:.0f}/s")

    journal_namespace.sync()
    streams: dict[bytes, list[bytes]] = {b"STDOUT": [], b"STDERR": []}
    reader = journal.Reader(path=str(journal_namespace.directory))
    try:
        reader.add_match(CONTAINER_ID="cont-1")
        while reader._next():
            streams[reader._get("STREAM")].append(reader._get("MESSAGE"))
    finally:
        reader.close()

    # Every line, by its sequence number: nothing lost, duplicated or out of order.
    assert streams[b"STDOUT"] == [b"out %d" % i for i in range(PER_STREAM)]
    assert streams[b"STDERR"] == [b"err %d" % i for i in range(PER_STREAM)]
