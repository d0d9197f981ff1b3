"""A task writing lines as fast as it can loses none and reorders none.

journald, not the shipper, sets the pace: it spends about 19 us of CPU per entry and runs
flat out on one of this machine's two CPUs, which gives 30,000-50,000 lines/s (slower as its
files grow). A million lines take 35-70 s here, too long for the suite, which ships 200,000;
the full million, with the throughput printed:

    LOGWAY_SHIP_VOLUME_LINES=1000000 .venv/bin/pytest -q tests/shipper/test_volume.py -rP
"""

from __future__ import annotations

import os
import time

import pytest
from systemd import journal

from app.devcluster.journald import JournaldNamespace
from tests.shipper.support import PYTHON, ship

pytestmark = pytest.mark.journald

LINES = int(os.environ.get("LOGWAY_SHIP_VOLUME_LINES", "200000"))
PER_STREAM = LINES // 2
CHUNK = 10_000
TASK = f"""
import sys
out, err = sys.stdout.buffer, sys.stderr.buffer
for start in range(0, {PER_STREAM}, {CHUNK}):
    numbers = range(start, min(start + {CHUNK}, {PER_STREAM}))
    out.write(b"".join(b"out %d\\n" % i for i in numbers))
    out.flush()
    err.write(b"".join(b"err %d\\n" % i for i in numbers))
    err.flush()
"""


def test_every_line_arrives_in_order(journal_namespace: JournaldNamespace) -> None:
    started = time.monotonic()
    result = ship(journal_namespace, PYTHON, "-c", TASK, timeout=180)
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
