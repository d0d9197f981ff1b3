"""Signal transparency: what is sent to the shipper reaches the task, and the shipper dies of
the signal the task died of, so whoever started it cannot tell the two apart."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import sys
from collections.abc import Callable, Iterable, Iterator
from types import FrameType

# What a supervisor sends to stop or poke a task; each ends a process that does not catch it.
FORWARDED_SIGNALS = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)
# What a terminal sends to its whole foreground process group by itself.
TERMINAL_SIGNALS = frozenset({signal.SIGINT, signal.SIGQUIT})
_UNCATCHABLE = frozenset({signal.SIGKILL, signal.SIGSTOP})


@contextlib.contextmanager
def catching(signals: Iterable[int], handler: Callable[[int], None]) -> Iterator[None]:
    """Call `handler(signum)` for `signals` while inside; the previous handlers after.

    A signal this process ignores (nohup) stays ignored: a task started meanwhile inherits
    the ignoring, where a handler of ours would be reset to the default by exec.
    """

    def on_signal(signum: int, frame: FrameType | None) -> None:
        handler(signum)

    previous = {
        s: signal.signal(s, on_signal) for s in signals if signal.getsignal(s) != signal.SIG_IGN
    }
    try:
        yield
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


class SignalForwarder:
    """Sends the signals it is given to the attached task.

    Forwarding happens in the signal handler itself, so it is immediate even while the main
    loop is blocked on a busy journald; signals that come before the task exists wait for
    attach(). A pidfd, unlike a pid, never names a recycled process. Signals in `direct` are
    swallowed: the task gets them another way (its terminal), and the shipper must not die
    of them.
    """

    def __init__(self, *, direct: Iterable[int] = ()) -> None:
        self._direct = frozenset(direct)
        self._pidfd: int | None = None
        self._early: list[int] = []

    def attach(self, pidfd: int) -> None:
        self._pidfd = pidfd
        while self._early:
            self(self._early.pop(0))

    def detach(self) -> None:
        """Stop forwarding (before the pidfd is closed)."""
        self._pidfd = None

    def __call__(self, signum: int) -> None:
        if signum in self._direct:
            return
        if self._pidfd is None:
            self._early.append(signum)
            return
        with contextlib.suppress(ProcessLookupError):  # exited, not yet reaped
            signal.pidfd_send_signal(self._pidfd, signum)


def exit_status(returncode: int) -> int:
    """The exit status for a Popen-style `returncode`; for -N, die of signal N."""
    if returncode >= 0:
        return returncode
    signum = -returncode
    sys.stdout.flush()
    sys.stderr.flush()
    # The task already dumped core if it was going to; the shipper's image is of no use.
    resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))
    if signum not in _UNCATCHABLE:
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signum})
    os.kill(os.getpid(), signum)
    # Only a signal whose default action is not to terminate gets here.
    return 128 + signum
