"""Run a task, or read stdin, with every line shipped; report how it ended.

Both return a Popen-style returncode (-N: killed by signal N) for signals.exit_status().
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
from collections.abc import Sequence

from app.shipper.lines import Break
from app.shipper.pump import Pump
from app.shipper.signals import (
    FORWARDED_SIGNALS,
    TERMINAL_SIGNALS,
    SignalForwarder,
    catching,
)
from app.shipper.sink import LineSink, Stream

# A shell's answers when a command cannot be run.
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127


def run_command(command: Sequence[str], sink: LineSink) -> int:
    """Run `command` with its stdout and stderr shipped to `sink`; its returncode.

    The task gets its own process group, so a signal meant for the shipper reaches it once,
    forwarded, and not a second time from a group-wide kill. With a terminal on stdin it stays
    in ours instead (it may read the terminal), and the terminal's own SIGINT/SIGQUIT reach it
    directly, so those two are not forwarded.
    """
    interactive = os.isatty(0)
    forwarder = SignalForwarder(direct=TERMINAL_SIGNALS if interactive else ())
    with catching(FORWARDED_SIGNALS, forwarder):
        try:
            proc = subprocess.Popen(
                list(command),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                process_group=None if interactive else 0,
            )
        except OSError as exc:
            return _not_started(command[0], exc, sink)
        with proc:
            assert proc.stdout is not None
            assert proc.stderr is not None
            sources = {proc.stdout.fileno(): Stream.STDOUT, proc.stderr.fileno(): Stream.STDERR}
            pidfd = os.pidfd_open(proc.pid)
            forwarder.attach(pidfd)
            try:
                Pump(sink, sources).run(exited=pidfd)
                return proc.wait()
            finally:
                forwarder.detach()
                os.close(pidfd)


def ship_stdin(sink: LineSink) -> int:
    """Ship this process's stdin until EOF; 0, or -N when signal N stopped the reading.

    The first terminating signal ends the reading and flushes the unfinished line before the
    shipper dies of it; a second one kills at once (its handler is back to the default).
    """
    received: list[int] = []

    def stop_reading(signum: int) -> None:
        received.append(signum)
        signal.signal(signum, signal.SIG_DFL)

    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    old_wakeup = signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    try:
        with catching(FORWARDED_SIGNALS, stop_reading):
            Pump(sink, {0: Stream.STDOUT}).run(stop=wake_r)
    finally:
        signal.set_wakeup_fd(old_wakeup)
        os.close(wake_r)
        os.close(wake_w)
    return -received[0] if received else 0


def _not_started(program: str, exc: OSError, sink: LineSink) -> int:
    if exc.errno == errno.ENOENT:
        status = EXIT_NOT_FOUND
        reason = exc.strerror if "/" in program else "command not found"
    else:
        status, reason = EXIT_NOT_EXECUTABLE, exc.strerror
    message = f"logway ship: {program}: {reason}"
    print(message, file=sys.stderr)
    # The task's log is where its operator will look for why it never ran.
    sink.write(Stream.STDERR, message.encode(), Break.NEWLINE)
    return status
