"""Per-process limits a busy gateway or node reader needs (issue 17), raised at process start.

Every client stream holds a socket, and every stream through the gateway a second one towards
its node reader; a node reader's journal handles hold one descriptor per journal file. The
usual soft RLIMIT_NOFILE (1024) ends that at a few hundred followers with `EMFILE`, while the
hard limit (systemd's default 524288, `LimitNOFILE=` in deploy/) allows far more: a process may
raise its own soft limit up to the hard one without privileges, so each does at start.

The listen backlog bounds connections the kernel has accepted and the server not yet taken: a
burst of clients (32 at once in `make bench`, thousands of followers reconnecting after a
restart) beyond it sees connection resets or SYN retries. The kernel caps it at
`net.core.somaxconn` (4096 by default since Linux 5.4).
"""

from __future__ import annotations

import logging
import resource
from pathlib import Path

LISTEN_BACKLOG = 4096
NR_OPEN = Path("/proc/sys/fs/nr_open")  # the kernel's ceiling for any RLIMIT_NOFILE
NR_OPEN_DEFAULT = 1 << 20


def _ceiling() -> int:
    try:
        return int(NR_OPEN.read_text())
    except (OSError, ValueError):
        return NR_OPEN_DEFAULT


def raise_open_files() -> tuple[int, int]:
    """Raise this process's soft RLIMIT_NOFILE to its hard limit (children inherit it);
    returns (before, after). An unlimited hard limit counts as the kernel's `nr_open`."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = _ceiling() if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            return soft, soft  # a sandbox that forbids it: keep going with what we have
    return soft, resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def raise_process_limits(log: logging.Logger) -> None:
    """At a server's start: `raise_open_files`, and say what it did."""
    before, after = raise_open_files()
    log.info("open files: soft limit %d (was %d); listen backlog %d", after, before, LISTEN_BACKLOG)


__all__ = ["LISTEN_BACKLOG", "raise_open_files", "raise_process_limits"]
