"""Real journald namespaces for the dev cluster and the tests.

`systemd-journald NAMESPACE` runs without systemd as PID 1: it creates its sockets under
/run/systemd/journal.NAMESPACE/ and writes /var/log/journal/<machine-id>.NAMESPACE/.
Its settings come from /etc/systemd/journald@NAMESPACE.conf, which we own while it runs.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Self

from app.devcluster.lifecycle import Started

JOURNALD = Path("/lib/systemd/systemd-journald")
CONF_DIR = Path("/etc/systemd")
STATE_DIR = Path("/var/log/journal")
RUNTIME_DIR = Path("/run/systemd")
START_TIMEOUT = 10.0

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# A namespaced journald exits after 30 s without stream clients (IDLE_TIMEOUT_USEC in
# journald-server.c), even while datagrams keep arriving. A stdout stream that sends its
# header (identifier, unit, priority, level prefix, three forward flags; journald-stream.c)
# and never a line keeps it up without adding an entry.
KEEPALIVE_HEADER = b"logway-keepalive\n\n6\n0\n0\n0\n0\n"

# Shipped task output must never be dropped: journald's default rate limit
# (10000 messages per 30 s) would drop lines from a busy task.
DEFAULT_SETTINGS = {
    "Storage": "persistent",
    "RateLimitIntervalSec": "0",
    "RateLimitBurst": "0",
}


def machine_id() -> str:
    return Path("/etc/machine-id").read_text().strip()


class JournaldError(RuntimeError):
    pass


class JournaldNamespace(Started):
    """One `systemd-journald NAMESPACE` process and everything it created.

    Use as a context manager, or call start()/stop(); stop() removes the journal files,
    sockets and config file so nothing outlives the owner.
    """

    def __init__(self, name: str, *, settings: dict[str, str] | None = None) -> None:
        if not _NAME.match(name):
            raise ValueError(f"invalid journal namespace name: {name!r}")
        self.name = name
        self.settings = {**DEFAULT_SETTINGS, **(settings or {})}
        self._proc: subprocess.Popen[bytes] | None = None
        self._keepalive: socket.socket | None = None

    @property
    def conf_path(self) -> Path:
        return CONF_DIR / f"journald@{self.name}.conf"

    @property
    def directory(self) -> Path:
        return STATE_DIR / f"{machine_id()}.{self.name}"

    @property
    def runtime_dir(self) -> Path:
        return RUNTIME_DIR / f"journal.{self.name}"

    @property
    def socket(self) -> Path:
        """The native-protocol datagram socket (sd_journal_send's target)."""
        return self.runtime_dir / "socket"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> Self:
        if os.geteuid() != 0:
            raise JournaldError("journald namespaces need root (run as root or with sudo)")
        if not JOURNALD.exists():
            raise JournaldError(f"{JOURNALD} not found: install the systemd package")
        self._remove_files()
        CONF_DIR.mkdir(parents=True, exist_ok=True)
        body = "".join(f"{k}={v}\n" for k, v in self.settings.items())
        self.conf_path.write_text(f"[Journal]\n{body}")
        self._proc = subprocess.Popen(
            [str(JOURNALD), self.name],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + START_TIMEOUT
        stdout = self.runtime_dir / "stdout"
        while not (self.socket.exists() and stdout.exists() and self.directory.exists()):
            if self._proc.poll() is not None:
                raise JournaldError(f"systemd-journald {self.name} exited: {self._proc.returncode}")
            if time.monotonic() > deadline:
                self.stop()
                raise JournaldError(f"systemd-journald {self.name} did not start")
            time.sleep(0.01)
        self._keepalive = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._keepalive.connect(str(self.runtime_dir / "stdout"))
        self._keepalive.sendall(KEEPALIVE_HEADER)
        return self

    def rotate(self) -> None:
        subprocess.run(["journalctl", f"--namespace={self.name}", "--rotate"], check=True)

    def vacuum_files(self, keep: int) -> None:
        subprocess.run(
            ["journalctl", f"--namespace={self.name}", f"--vacuum-files={keep}"],
            check=True,
            capture_output=True,
        )

    def sync(self) -> None:
        """Ask journald to write everything it received to the files (SIGRTMIN+1)."""
        if self._proc is None:
            return
        subprocess.run(["journalctl", f"--namespace={self.name}", "--sync"], check=True)

    def stop(self) -> None:
        if self._keepalive is not None:
            self._keepalive.close()
            self._keepalive = None
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._remove_files()

    def _remove_files(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
        shutil.rmtree(self.runtime_dir, ignore_errors=True)
        self.conf_path.unlink(missing_ok=True)
