"""`logway ship` end to end: real shipper processes, real tasks, a real journald namespace."""

from __future__ import annotations

import os
import pty
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest

from app.devcluster.journald import JournaldNamespace
from tests.shipper.support import (
    PYTHON,
    ROOT,
    TASK,
    entries,
    messages,
    ship,
    ship_command,
    stop,
    task_options,
    wait_for_message,
)

pytestmark = pytest.mark.journald

OWN_FIELDS = {"MESSAGE", "STREAM", "SYSLOG_IDENTIFIER", "LINE_BREAK", "TASK_ID", *TASK}


def own_fields(entry: dict[str, bytes]) -> dict[str, bytes]:
    """The fields the shipper sent, without journald's trusted `_` fields."""
    return {k: v for k, v in entry.items() if not k.startswith("_")}


def test_every_line_has_exactly_the_task_fields(journal_namespace: JournaldNamespace) -> None:
    result = ship(journal_namespace, "sh", "-c", "echo one; echo two", extra=["--task-id", "t.1"])

    assert result.returncode == 0, result.stderr
    assert [own_fields(e) for e in entries(journal_namespace)] == [
        {**TASK, "TASK_ID": b"t.1", "SYSLOG_IDENTIFIER": b"sh", "STREAM": b"STDOUT", "MESSAGE": m}
        for m in (b"one", b"two")
    ]
    assert {e["_TRANSPORT"] for e in entries(journal_namespace)} == {b"journal"}


def test_no_task_id_and_a_chosen_identifier(journal_namespace: JournaldNamespace) -> None:
    result = ship(journal_namespace, "/bin/echo", "hi", extra=["--identifier", "web.app"])

    assert result.returncode == 0, result.stderr
    [entry] = entries(journal_namespace)
    assert "TASK_ID" not in entry
    assert entry["SYSLOG_IDENTIFIER"] == b"web.app"


def test_default_identifier_is_the_command_basename(journal_namespace: JournaldNamespace) -> None:
    ship(journal_namespace, "/bin/echo", "hi")

    assert [e["SYSLOG_IDENTIFIER"] for e in entries(journal_namespace)] == [b"echo"]


def test_stdout_and_stderr_are_kept_apart(journal_namespace: JournaldNamespace) -> None:
    script = "for i in 1 2 3; do echo out$i; echo err$i >&2; done"
    result = ship(journal_namespace, "sh", "-c", script)

    assert result.returncode == 0
    assert result.stdout == result.stderr == b""  # everything went to the journal
    assert messages(journal_namespace, b"STDOUT") == [b"out1", b"out2", b"out3"]
    assert messages(journal_namespace, b"STDERR") == [b"err1", b"err2", b"err3"]


def test_stdin_mode_ships_stdin_as_stdout(journal_namespace: JournaldNamespace) -> None:
    result = ship(journal_namespace, stdin=b"first\nsecond\nno newline at the end")

    assert result.returncode == 0, result.stderr
    found = entries(journal_namespace)
    assert [own_fields(e) for e in found] == [
        {**TASK, "SYSLOG_IDENTIFIER": b"logway-ship", "STREAM": b"STDOUT", "MESSAGE": b"first"},
        {**TASK, "SYSLOG_IDENTIFIER": b"logway-ship", "STREAM": b"STDOUT", "MESSAGE": b"second"},
        {
            **TASK,
            "SYSLOG_IDENTIFIER": b"logway-ship",
            "STREAM": b"STDOUT",
            "MESSAGE": b"no newline at the end",
            "LINE_BREAK": b"eof",
        },
    ]


def test_stdin_mode_flushes_the_partial_line_when_terminated(
    journal_namespace: JournaldNamespace,
) -> None:
    proc = subprocess.Popen(ship_command(journal_namespace), stdin=subprocess.PIPE, cwd=ROOT)
    try:
        assert proc.stdin is not None
        proc.stdin.write(b"whole\nhalf a li")
        proc.stdin.flush()
        wait_for_message(journal_namespace, b"whole")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == -signal.SIGTERM
    finally:
        stop(proc)
        if proc.stdin:
            proc.stdin.close()
    assert messages(journal_namespace) == [b"whole", b"half a li"]


LINES = [
    pytest.param(b"\xff\xfe bad \xc3", id="invalid-utf8"),
    pytest.param(b"dos line\r", id="carriage-return"),
    pytest.param(b"\r", id="only-cr"),
    pytest.param(b"tab\tnul\x00bell\x07", id="control-bytes"),
    pytest.param("ünïcödé ✓".encode(), id="utf8"),
    pytest.param(b"", id="empty"),
    pytest.param(b"KEY=value", id="looks-like-a-field"),
    pytest.param(b"y" * (100 * 1024), id="100KiB"),
    pytest.param(bytes(range(256)).replace(b"\n", b"") * 4096, id="1MiB-all-bytes"),
]


@pytest.mark.parametrize("line", LINES)
def test_lines_arrive_byte_for_byte(journal_namespace: JournaldNamespace, line: bytes) -> None:
    write = "import sys; sys.stdout.buffer.write(sys.stdin.buffer.read())"
    result = ship(journal_namespace, PYTHON, "-c", write, stdin=b"before\n" + line + b"\nafter\n")

    assert result.returncode == 0, result.stderr
    found = entries(journal_namespace)
    assert [e["MESSAGE"] for e in found] == [b"before", line, b"after"]
    assert all("LINE_BREAK" not in e for e in found)


def test_a_line_over_line_max_is_cut_not_lost(journal_namespace: JournaldNamespace) -> None:
    line_max = 8 * 1024 * 1024
    line = os.urandom(line_max + 1024 * 1024).replace(b"\n", b"n")
    result = ship(journal_namespace, "cat", stdin=line + b"\n")

    assert result.returncode == 0, result.stderr
    found = entries(journal_namespace)
    assert [(len(e["MESSAGE"]), e.get("LINE_BREAK")) for e in found] == [
        (line_max, b"line-max"),
        (1024 * 1024, None),
    ]
    assert found[0]["MESSAGE"] + found[1]["MESSAGE"] == line


def test_partial_last_line_is_flushed(journal_namespace: JournaldNamespace) -> None:
    result = ship(journal_namespace, "sh", "-c", "printf 'done\\nno newline'; printf oops >&2")

    assert result.returncode == 0
    found = [(e["STREAM"], e["MESSAGE"], e.get("LINE_BREAK")) for e in entries(journal_namespace)]
    assert sorted(found) == [
        (b"STDERR", b"oops", b"eof"),
        (b"STDOUT", b"done", None),
        (b"STDOUT", b"no newline", b"eof"),
    ]


@pytest.mark.parametrize("code", [0, 1, 3, 127, 255])
def test_exit_status_is_the_tasks(journal_namespace: JournaldNamespace, code: int) -> None:
    assert ship(journal_namespace, "sh", "-c", f"echo bye; exit {code}").returncode == code
    assert messages(journal_namespace) == [b"bye"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL, signal.SIGSEGV, signal.SIGUSR1])
def test_shipper_dies_of_the_tasks_signal(
    journal_namespace: JournaldNamespace, sig: signal.Signals
) -> None:
    result = ship(journal_namespace, "sh", "-c", f"echo dying; kill -{sig.name[3:]} $$")

    assert result.returncode == -sig
    assert messages(journal_namespace) == [b"dying"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR2])
def test_signals_to_the_shipper_reach_the_task(
    journal_namespace: JournaldNamespace, sig: signal.Signals
) -> None:
    trap = f"trap 'echo got {sig.name}; exit 7' {sig.name[3:]}"
    script = f"{trap}; echo ready; while :; do sleep 0.05; done"
    proc = subprocess.Popen(
        ship_command(journal_namespace, "sh", "-c", script), stdin=subprocess.DEVNULL, cwd=ROOT
    )
    try:
        wait_for_message(journal_namespace, b"ready")
        proc.send_signal(sig)
        assert proc.wait(10) == 7
    finally:
        stop(proc)
    assert messages(journal_namespace) == [b"ready", f"got {sig.name}".encode()]


def test_task_killed_by_a_forwarded_sigterm_kills_the_shipper_the_same_way(
    journal_namespace: JournaldNamespace,
) -> None:
    proc = subprocess.Popen(
        ship_command(journal_namespace, "sh", "-c", "echo ready; exec sleep 60"),
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
    )
    try:
        wait_for_message(journal_namespace, b"ready")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == -signal.SIGTERM
    finally:
        stop(proc)


def test_missing_command_exits_127(journal_namespace: JournaldNamespace) -> None:
    result = ship(journal_namespace, "no-such-command-xyz", "arg")

    assert result.returncode == 127
    assert result.stderr == b"logway ship: no-such-command-xyz: command not found\n"
    # The task's own log says why it never ran.
    [entry] = entries(journal_namespace)
    assert entry["STREAM"] == b"STDERR"
    assert entry["MESSAGE"] == b"logway ship: no-such-command-xyz: command not found"


def test_not_executable_exits_126(journal_namespace: JournaldNamespace, tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho never\n")
    script.chmod(stat.S_IRUSR | stat.S_IWUSR)

    result = ship(journal_namespace, str(script))

    assert result.returncode == 126
    assert result.stderr == f"logway ship: {script}: Permission denied\n".encode()


def test_unreachable_journald_exits_125_without_running_the_task(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    args = [PYTHON, "-m", "app.shipper.cli", "--socket", str(tmp_path / "none"), *task_options()]

    result = subprocess.run(
        [*args, "--", "touch", str(marker)], capture_output=True, cwd=ROOT, timeout=30
    )

    assert result.returncode == 125
    assert b"cannot reach journald" in result.stderr
    assert not marker.exists()


def test_output_of_a_lingering_grandchild_is_shipped_then_given_up_on(
    journal_namespace: JournaldNamespace, tmp_path: Path
) -> None:
    # The task exits at once; a background process it left keeps its stdout open, writes
    # once more, then stays silent far longer than the shipper's idle drain allows.
    pgid_file = tmp_path / "pgid"
    script = f"echo $$ > {pgid_file}; (sleep 0.5; echo late; exec sleep 60) & echo early"
    started = time.monotonic()
    try:
        result = ship(journal_namespace, "sh", "-c", script)
        elapsed = time.monotonic() - started
    finally:
        # The task led its own process group; the lingering sleep is still in it.
        os.killpg(int(pgid_file.read_text()), signal.SIGKILL)

    assert result.returncode == 0
    assert messages(journal_namespace) == [b"early", b"late"]
    assert 2.5 < elapsed < 10


COUNT_SIGINTS = """
import signal, sys, time
received = []
signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
print("ready", flush=True)
deadline = time.monotonic() + 1.0
while time.monotonic() < deadline and not received:
    time.sleep(0.01)
time.sleep(0.3)  # room for a second, unwanted delivery
print(f"sigints {len(received)}", flush=True)
"""


@pytest.mark.parametrize("terminal", [False, True], ids=["pipe-stdin", "tty-stdin"])
def test_a_group_wide_sigint_reaches_the_task_once(
    journal_namespace: JournaldNamespace, terminal: bool
) -> None:
    # Ctrl-C, or a supervisor's killpg: the shipper's whole process group gets the signal.
    primary, secondary = pty.openpty() if terminal else os.pipe()
    proc = subprocess.Popen(
        ship_command(journal_namespace, PYTHON, "-c", COUNT_SIGINTS),
        stdin=secondary,
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        wait_for_message(journal_namespace, b"ready")
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(10) == 0
    finally:
        stop(proc)
        os.close(primary)
        os.close(secondary)
    assert messages(journal_namespace) == [b"ready", b"sigints 1"]


@pytest.mark.parametrize(("trap", "ignored"), [('trap "" HUP', b"True"), (":", b"False")])
def test_the_task_inherits_an_ignored_sighup(
    journal_namespace: JournaldNamespace, trap: str, ignored: bytes
) -> None:
    # Under nohup, the shipper must not turn SIGHUP back on for the task by catching it.
    check = "import signal; print(signal.getsignal(signal.SIGHUP) is signal.SIG_IGN)"
    shipper = ship_command(journal_namespace, PYTHON, "-c", check)
    result = subprocess.run(
        ["sh", "-c", f'{trap}; exec "$@"', "sh", *shipper],
        cwd=ROOT,
        capture_output=True,
        timeout=30,
    )

    assert result.returncode == 0, result.stderr
    assert messages(journal_namespace) == [ignored]
