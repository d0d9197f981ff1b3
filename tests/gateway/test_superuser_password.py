"""A generated superuser password never reaches a non-terminal stderr (under systemd or
Marathon that is a journal Logway serves): it goes to a 0600 file beside the IAM store."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import httpx

from app.devcluster.commands import logway_argv
from tests.conftest import free_port
from tests.support.servers import stop, wait_http

HOST = "127.0.0.4"


def test_generated_password_goes_to_a_private_file_not_to_stderr(tmp_path: Path) -> None:
    port = free_port(HOST)
    env = {k: v for k, v in os.environ.items() if k != "LOGWAY_IAM_SUPERUSER_PASSWORD"}
    env["LOGWAY_IAM_SCRYPT_LOG2_N"] = "12"
    data = tmp_path / "gw"
    argv = logway_argv("gateway", f"--host={HOST}", f"--port={port}", f"--data-dir={data}")
    base = f"http://{HOST}:{port}"
    output = tmp_path / "stderr.txt"
    with output.open("wb") as sink:
        proc = subprocess.Popen(argv, stdout=sink, stderr=subprocess.STDOUT, env=env)
        try:
            wait_http(f"{base}/acs/api/v1/auth/jwks", proc)
            path = data / "superuser-password"
            password = path.read_text().strip()
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
            r = httpx.post(
                f"{base}/acs/api/v1/auth/login", json={"uid": "admin", "password": password}
            )
            assert r.status_code == 200, r.text
        finally:
            stop(proc)
    printed = output.read_text()
    assert str(path) in printed
    assert password not in printed
