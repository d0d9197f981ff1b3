"""Several worker processes behind one listening address (issue 17), as nginx (Admin Router)
runs workers: each its own event loop on its own core, each holding its share of the open
streams and of their file descriptors.

Every worker has its own listening socket bound with `SO_REUSEPORT` to the same address; the
kernel spreads new connections over them by a hash of the connection's addresses, so each
worker takes about the same number (a shared socket would leave it to whichever worker wakes
first, the idlest, and the count per worker to chance). A process holds two descriptors per
proxied follow (its caller's, its upstream's): N workers hold 1/N of them each, which is what
lets 10,000 followers through one gateway whose processes may open fewer than 20,000 files.

Each worker builds its own application after the fork (no event loop, client or database
connection crosses it). The first starts alone, so what a start does once (the IAM store's
bootstrap, the first signing key) is done once; the others start when it serves. What the
workers share lives in the IAM store, which every worker watches (`AccessWatcher` ends a
worker's streams when a grant is revoked in any of them). Counters and limits kept in memory
are per worker (deploy/README.md, "Worker processes").

The parent only supervises: SIGTERM or SIGINT is passed to every worker (each ends its open
streams, `GracefulServer`); a worker that exits by itself stops the others, and the parent
exits with its status, for systemd or Marathon to restart the whole.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import sys
import traceback
from collections.abc import Callable
from types import FrameType

# How long a worker may take to start serving before the gateway gives up.
START_TIMEOUT = 120.0

Serve = Callable[[socket.socket, Callable[[], None]], int]


def reuseport_sockets(host: str, port: int, count: int, backlog: int) -> list[socket.socket]:
    """`count` listening sockets on (host, port), all `SO_REUSEPORT`; port 0: the kernel's
    choice for the first, shared by the others."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]
            sock.listen(backlog)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _worker(serve: Serve, sockets: list[socket.socket], index: int, ready: int) -> int:
    for n, sock in enumerate(sockets):
        if n != index:
            sock.close()

    def started() -> None:
        with contextlib.suppress(OSError):
            os.write(ready, b"1")
            os.close(ready)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)  # the server installs its own
    return serve(sockets[index], started)


def _wait_ready(pid: int, ready: int) -> bool:
    """Until the worker says it serves (True) or exits first (False)."""
    readable, _, _ = select.select([ready], [], [], START_TIMEOUT)
    got = os.read(ready, 1) if readable else b""
    os.close(ready)
    if got:
        return True
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    return False


def _status(wait_status: int) -> int:
    code = os.waitstatus_to_exitcode(wait_status)
    return code if code >= 0 else 128 - code


def run_workers(serve: Serve, sockets: list[socket.socket]) -> int:
    """Forks a worker per socket, each `serve(socket, started)` (`started()` once it serves),
    one after the other; then supervises them (see the module's docstring)."""
    pids: list[int] = []
    stopping = False

    def forward(sig: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    status = 0
    try:
        for index in range(len(sockets)):
            read_end, write_end = os.pipe()
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:  # the worker
                os.close(read_end)
                code = 1
                try:
                    code = _worker(serve, sockets, index, write_end)
                except BaseException:
                    traceback.print_exc()
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(code)
            os.close(write_end)
            pids.append(pid)
            if stopping or not _wait_ready(pid, read_end):
                status = 0 if stopping else 1
                forward(signal.SIGTERM, None)
                break
        for sock in sockets:
            sock.close()  # the workers hold theirs
        while pids:
            try:
                pid, wait_status = os.wait()
            except ChildProcessError:
                break
            if pid in pids:
                pids.remove(pid)
                code = _status(wait_status)
                if not stopping:  # one ended by itself: the gateway is not whole any more
                    status = code or 1
                    forward(signal.SIGTERM, None)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status


__all__ = ["START_TIMEOUT", "reuseport_sockets", "run_workers"]
