"""Command lines of Logway's own processes, for the dev cluster, the tests and the bench."""

from __future__ import annotations

import sys


def logway_argv(*args: str) -> list[str]:
    """`logway ARGS…` with this interpreter (works without the console script on PATH)."""
    return [sys.executable, "-m", "app.cli.main", *args]


def node_argv(namespace: str, host: str, port: int, *extra: str) -> list[str]:
    """A node reader over a journald namespace on host:port, logging warnings only."""
    return logway_argv(
        "node",
        f"--journal-namespace={namespace}",
        f"--host={host}",
        f"--port={port}",
        "--log-level=WARNING",
        *extra,
    )
