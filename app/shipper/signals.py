"""Signal transparency: what is sent to the shipper reaches the task, and the shipper dies of
the signal the task died of, so whoever started it cannot tell the two apart."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import sys
from collections.abc import Iterable
from types import FrameType, TracebackType

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


class SignalForwarder:
    """While entered, catches `signals` and sends each to the attached task.

    Forwarding happens in the handler, so it is immediate even while the main loop is blocked
    on a busy journald; signals that come before the task exists wait for attach(). A pidfd,
    unlike a pid, never names a recycled process. Signals in `direct` are caught but not
    forwarded: the task gets them by another way (a terminal) and the shipper must not die of
    them. Signals this process ignores (nohup) stay ignored, and the task inherits that.
    """

    def __init__(self, signals: Iterable[int], *, direct: Iterable[int] = ()) -> None:
        self._signals = [s for s in signals if signal.getsignal(s) != signal.SIG_IGN]
        self._direct = frozenset(direct)
        self._pidfd: int | None = None
        self._early: list[int] = []
        self._previous: dict[int, signal.Handlers | int | signal._HANDLER] = {}

    def attach(self, pidfd: int) -> None:
        self._pidfd = pidfd
        while self._early:
            self._forward(self._early.pop(0))

    def detach(self) -> None:
        """Stop forwarding (before the pidfd is closed)."""
        self._pidfd = None

    def __enter__(self) -> SignalForwarder:
        for s in self._signals:
            self._previous[s] = signal.signal(s, self._on_signal)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.detach()
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous.clear()

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if signum in self._direct:
            return
        if self._pidfd is None:
            self._early.append(signum)
        else:
            self._forward(signum)

    def _forward(self, signum: int) -> None:
        if self._pidfd is not None:
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
