"""A real `logway gateway` process on a loopback address, with its own data directory."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from app.devcluster.commands import logway_argv
from tests.conftest import free_port
from tests.support.servers import stop, wait_http


@contextlib.contextmanager
def gateway(
    data_dir: Path,
    *extra: str,
    password: str,
    host: str = "127.0.0.4",
    extra_env: dict[str, str] | None = None,
    log_path: Path | None = None,
) -> Iterator[str]:
    """`logway gateway` with its own data directory; `extra` are more CLI options. Its output
    goes to `log_path` when given (pass `--log-level=INFO` to see audit lines)."""
    port = free_port(host)
    env = {
        **os.environ,
        "LOGWAY_IAM_SUPERUSER_PASSWORD": password,
        "LOGWAY_IAM_SCRYPT_LOG2_N": "12",  # fast hashing for tests only
        **(extra_env or {}),
    }
    argv = logway_argv(
        "gateway",
        f"--host={host}",
        f"--port={port}",
        f"--data-dir={data_dir}",
        "--log-level=WARNING",
        *extra,
    )
    base = f"http://{host}:{port}"
    with contextlib.ExitStack() as cleanup:
        output = cleanup.enter_context(log_path.open("wb")) if log_path else subprocess.PIPE
        proc = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT, env=env)
        try:
            wait_http(f"{base}/acs/api/v1/auth/jwks", proc)
            yield base
        finally:
            stop(proc)
            if proc.stdout:
                proc.stdout.close()
