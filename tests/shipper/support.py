"""Run the real shipper against a real journald namespace, and read back what it wrote."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from systemd import journal

from app.devcluster.journald import JournaldNamespace
from tests.support.wait import wait_for

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
TASK = {
    "AGENT_ID": b"S0-agent",
    "FRAMEWORK_ID": b"fw-1",
    "EXECUTOR_ID": b"exec-1",
    "CONTAINER_ID": b"cont-1",
}


def task_options() -> list[str]:
    """--agent-id S0-agent --framework-id fw-1 ... for the TASK fields."""
    return [
        arg
        for field, value in TASK.items()
        for arg in (f"--{field.split('_')[0].lower()}-id", value.decode())
    ]


def ship_command(ns: JournaldNamespace, *command: str, extra: Sequence[str] = ()) -> list[str]:
    args = [PYTHON, "-m", "app.shipper.cli", "--journal-namespace", ns.name, *task_options()]
    args += extra
    return [*args, "--", *command] if command else args


def ship(
    ns: JournaldNamespace,
    *command: str,
    extra: Sequence[str] = (),
    stdin: bytes | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[bytes]:
    """Run the shipper to the end; on a timeout, kill it and its task, then raise."""
    proc = subprocess.Popen(
        ship_command(ns, *command, extra=extra),
        stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    finally:
        stop(proc)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def entries(ns: JournaldNamespace) -> list[dict[str, bytes]]:
    """Every entry the shipper wrote (all fields, raw bytes), oldest first."""
    ns.sync()
    reader = journal.Reader(path=str(ns.directory))
    try:
        reader.add_match(CONTAINER_ID=TASK["CONTAINER_ID"].decode())
        found = []
        while reader._next():
            found.append(reader._get_all())
        return found
    finally:
        reader.close()


def messages(ns: JournaldNamespace, stream: bytes | None = None) -> list[bytes]:
    return [e["MESSAGE"] for e in entries(ns) if stream is None or e["STREAM"] == stream]


def wait_for_message(ns: JournaldNamespace, message: bytes, timeout: float = 10) -> None:
    def found() -> bool | None:
        return message in messages(ns) or None

    wait_for(f"{message!r} in the journal", found, timeout=timeout)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Kill a shipper left running by a failed test, and its tasks (own process groups)."""
    if proc.poll() is not None:
        return
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    tasks = [int(pid) for pid in children.read_text().split()] if children.exists() else []
    proc.kill()
    proc.wait()
    for pid in tasks:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
