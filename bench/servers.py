"""The servers under test, each a child process we start, wait for and always stop.

The node reader runs as `python -m app.cli.main node` (no fork, so the Popen pid is the
server's pid for /proc). systemd-journal-gatewayd binds 0.0.0.0:19531 unless it is
socket-activated, so `systemd-socket-activate` hands it a socket bound to loopback.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

import httpx

from app.devcluster.commands import logway_argv, node_argv

LOOPBACK = "127.0.0.1"
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
GATEWAYD = Path("/lib/systemd/systemd-journal-gatewayd")
SOCKET_ACTIVATE = "systemd-socket-activate"
REPO = Path(__file__).resolve().parent.parent


class ServerError(RuntimeError):
    pass


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    """A child process serving HTTP on host:port; stderr goes to a log kept for errors."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        host: str,
        port: int,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self._argv = argv
        self._env = dict(env) if env is not None else None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise ServerError(f"{self.name} is not running")
        return self._proc.pid

    def start(self, ready_path: str, headers: Mapping[str, str] | None = None) -> None:
        """Start and wait until `ready_path` answers below 400 (sent with `headers`)."""
        self._proc = subprocess.Popen(
            self._argv,
            cwd=REPO,
            env=self._env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            start_new_session=True,  # Ctrl-C reaches us only; we stop it in order
        )
        self._wait_ready(ready_path, headers)

    def _wait_ready(self, path: str, headers: Mapping[str, str] | None) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            if self._proc is not None and self._proc.poll() is not None:
                raise ServerError(f"{self.name} exited {self._proc.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(self.base_url + path, headers=headers, timeout=2.0).status_code < 400:
                    return
            if time.monotonic() > deadline:
                raise ServerError(f"{self.name} not ready in {READY_TIMEOUT}s:\n{self.log_tail()}")
            time.sleep(0.05)

    def log_tail(self, limit: int = 2000) -> str:
        self._log.seek(0)
        return self._log.read()[-limit:].decode(errors="replace")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._log.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def node_reader(
    namespace: str,
    *,
    host: str = LOOPBACK,
    port: int | None = None,
    auth: Sequence[str] = ("--no-auth",),
) -> Server:
    """`auth`: the node's authentication options (`--jwks-url=…`, `--allow-uid=…`)."""
    port = port or free_port(host)
    argv = node_argv(namespace, host, port, *auth)
    return Server("logway node", argv, host=host, port=port)


def logway_gateway(
    data_dir: Path,
    *,
    host: str,
    mesos: str,
    reader_port: int,
    password: str,
    settings: Mapping[str, str] | None = None,
) -> Server:
    """`logway gateway` over a Mesos master at `mesos`, with the superuser's `password` and
    more `settings` (LOGWAY_GATEWAY_* variables).
    At WARNING, as the node reader: no per-request audit line (nginx runs without an access
    log)."""
    port = free_port(host)
    argv = logway_argv(
        "gateway",
        f"--host={host}",
        f"--port={port}",
        f"--data-dir={data_dir}",
        f"--mesos={mesos}",
        f"--reader-port={reader_port}",
        "--log-level=WARNING",
    )
    env = {**os.environ, "LOGWAY_IAM_SUPERUSER_PASSWORD": password, **(settings or {})}
    return Server("logway gateway", argv, host=host, port=port, env=env)


def gatewayd(directory: Path, *, host: str = LOOPBACK) -> Server:
    """gatewayd on loopback only: it takes the first socket systemd-socket-activate binds
    (sd_listen_fds) and execs in place, so the pid stays the same."""
    port = free_port(host)
    argv = [
        SOCKET_ACTIVATE,
        f"--listen={host}:{port}",
        str(GATEWAYD),
        f"--directory={directory}",
    ]
    return Server("systemd-journal-gatewayd", argv, host=host, port=port)


def status_field(pid: int, field: str) -> int:
    """A `kB` figure from /proc/<pid>/status (VmRSS, VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise ServerError(f"{field} not in /proc/{pid}/status")


def fds_under(pid: int, directory: Path) -> Counter[str]:
    """Open file descriptors of `pid` into `directory`, counted per file.

    Every sd_journal handle opens each journal file once, so the largest count is the
    number of live handles, whatever the process reports about itself.
    """
    prefix = str(directory) + os.sep
    files: Counter[str] = Counter()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):  # closed while we looked
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith(prefix):
                files[target] += 1
    return files


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of `pid` (all its threads) and of its live children (nginx's
    workers), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    total = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        with contextlib.suppress(FileNotFoundError):  # exited while we looked
            total += cpu_seconds(int(child))
    return total
