"""Full range reads, timed from start to last byte, entries counted as they stream in.

Every reader is a child process writing to a pipe (curl for HTTP, journalctl itself), and
we count entry separators in 1 MiB reads: the client costs the same for every server.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 20
NEWLINE = b"\n"
SSE_EVENT_END = b"\n\n"  # events are `data: …\n\n` (no `id:` on range reads)


@dataclass(frozen=True, slots=True)
class Reader:
    """One way of reading the whole journal."""

    label: str
    argv: tuple[str, ...]
    separator: bytes = NEWLINE


@dataclass(frozen=True, slots=True)
class Read:
    entries: int
    size: int
    seconds: float
    cpu: float = 0.0  # the serving process's CPU seconds (0: not measured)

    @property
    def rate(self) -> float:
        return self.entries / self.seconds if self.seconds > 0 else 0.0

    @property
    def per_cpu(self) -> float:
        """Entries per CPU second of the server: what a loaded machine changes least."""
        return self.entries / self.cpu if self.cpu > 0 else 0.0


class ReadError(RuntimeError):
    pass


def curl(
    label: str,
    url: str,
    accept: str,
    separator: bytes = NEWLINE,
    *,
    header_file: Path | None = None,
) -> Reader:
    """`header_file`: more request headers, one per line (curl's `-H @file`), so that a token
    never shows in the process list."""
    argv: tuple[str, ...] = (
        "curl",
        "--silent",
        "--show-error",
        "--fail",
        "-H",
        f"Accept: {accept}",
    )
    if header_file is not None:
        argv += ("-H", f"@{header_file}")
    return Reader(label, (*argv, url), separator)


def journalctl(label: str, namespace: str, output: str) -> Reader:
    return Reader(label, ("journalctl", f"--namespace={namespace}", "-o", output, "--no-pager"))


def count_stream(fd: int, separator: bytes) -> tuple[int, int]:
    """Separators and bytes read from `fd` until EOF. A separator split across two reads
    is found through the carry (the last len(separator)-1 bytes)."""
    keep = len(separator) - 1
    carry = b""
    count = size = 0
    while chunk := os.read(fd, CHUNK):
        size += len(chunk)
        data = carry + chunk if keep else chunk
        count += data.count(separator)
        carry = data[-keep:] if keep else b""
    return count, size


def run(reader: Reader) -> Read:
    started = time.perf_counter()
    with subprocess.Popen(
        reader.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        try:
            entries, size = count_stream(proc.stdout.fileno(), reader.separator)
            err = proc.stderr.read()  # after EOF on stdout: a few lines at most
            proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        detail = err.decode(errors="replace").strip()
        raise ReadError(f"{' '.join(reader.argv)} exited {proc.returncode}: {detail}")
    return Read(entries, size, seconds)
