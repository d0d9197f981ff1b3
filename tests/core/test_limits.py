"""`raise_open_files` in a child process started with a low soft RLIMIT_NOFILE: it ends at the
hard limit, which stays as it was."""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

from app.core.limits import LISTEN_BACKLOG, raise_open_files

PROBE = (
    "import resource; from app.core.limits import raise_open_files; "
    "print(*raise_open_files(), *resource.getrlimit(resource.RLIMIT_NOFILE))"
)


def test_the_soft_limit_is_raised_to_the_hard_one() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = 256

    def lower() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))

    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        preexec_fn=lower,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    before, after, soft, still_hard = map(int, out)
    assert before == low
    assert after == soft
    assert still_hard == hard
    unlimited = hard == resource.RLIM_INFINITY
    expected = int(Path("/proc/sys/fs/nr_open").read_text()) if unlimited else hard
    assert soft == expected


def test_a_second_call_changes_nothing() -> None:
    raise_open_files()
    before, after = raise_open_files()
    assert before == after
    assert LISTEN_BACKLOG >= 1024
