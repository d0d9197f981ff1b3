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


def gateway_argv(host: str, port: int, data_dir: str, *extra: str) -> list[str]:
    """The gateway on host:port with its IAM store and keys under `data_dir`, warnings only."""
    return logway_argv(
        "gateway",
        f"--host={host}",
        f"--port={port}",
        f"--data-dir={data_dir}",
        "--log-level=WARNING",
        *extra,
    )


def ship_argv(
    namespace: str,
    *command: str,
    agent_id: str,
    framework_id: str,
    executor_id: str,
    container_id: str,
    task_id: str,
    identifier: str,
) -> list[str]:
    """`logway ship` running `command` with its output in `namespace` under the task's ids."""
    return logway_argv(
        "ship",
        f"--journal-namespace={namespace}",
        f"--agent-id={agent_id}",
        f"--framework-id={framework_id}",
        f"--executor-id={executor_id}",
        f"--container-id={container_id}",
        f"--task-id={task_id}",
        f"--identifier={identifier}",
        "--",
        *command,
    )
