"""A throwaway PostgreSQL cluster (Debian's server binaries) for `logway dev --replicas` and
the tests: `initdb` in a directory of its own, one `postgres` on a loopback address, no
Unix socket, trust authentication on loopback only, C collation (the order of names is then
the same as SQLite's). `initdb` refuses to run as root: as root, the cluster runs as the
`postgres` system user (`runuser`), which owns the directory.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType

PG_BIN = Path(os.environ.get("LOGWAY_PG_BIN", "/usr/lib/postgresql/15/bin"))
SYSTEM_USER = "postgres"
START_TIMEOUT = 30.0


class PostgresError(RuntimeError):
    pass


class PostgresCluster:
    def __init__(self, directory: Path, *, host: str, port: int) -> None:
        self.directory = directory
        self.host = host
        self.port = port
        self._as_root = os.geteuid() == 0

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def log_file(self) -> Path:
        return self.directory / "postgres.log"

    def url(self, database: str = "postgres") -> str:
        user = SYSTEM_USER if self._as_root else _me()
        return f"postgresql://{user}@{self.host}:{self.port}/{database}"

    def init(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._as_root:
            entry = pwd.getpwnam(SYSTEM_USER)
            os.chown(self.directory, entry.pw_uid, entry.pw_gid)
            _check_parents(self.directory)
        self._run(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(self.data),
                "--auth=trust",
                "--no-locale",
                "--encoding=UTF8",
                "--no-sync",
                f"--username={SYSTEM_USER if self._as_root else _me()}",
            ]
        )

    def start(self) -> None:
        options = (
            f"-c listen_addresses={self.host} -c port={self.port} -c unix_socket_directories=''"
            " -c fsync=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            [
                str(PG_BIN / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log_file),
                "-o",
                options,
                "-w",
                "-t",
                str(int(START_TIMEOUT)),
                "start",
            ]
        )

    def stop(self, *, mode: str = "fast") -> None:
        if not (self.data / "postmaster.pid").exists():
            return
        self._run([str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"])

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def __enter__(self) -> PostgresCluster:
        self.init()
        try:
            self.start()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self.stop()
        finally:
            self.remove()

    def _run(self, argv: list[str]) -> None:
        if self._as_root:
            argv = ["runuser", "-u", SYSTEM_USER, "--", *argv]
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=START_TIMEOUT + 10, check=False
        )
        if done.returncode != 0:
            log = ""
            if self.log_file.exists():
                log = self.log_file.read_text(errors="replace")[-2000:]
            raise PostgresError(f"{argv[-1]} failed: {done.stderr.strip()} {log}".strip())


def wait_ready(url: str, *, timeout: float = START_TIMEOUT) -> None:
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(url, connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _me() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name


def _check_parents(path: Path) -> None:
    for parent in path.resolve().parents:
        if not parent.stat().st_mode & 0o001:
            raise PostgresError(
                f"{parent} is not traversable by the {SYSTEM_USER} user: put the cluster elsewhere"
            )
