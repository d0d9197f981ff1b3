"""A real PostgreSQL cluster for the tests: started once per session on 127.0.0.180 under a
temporary directory (as the `postgres` user when the tests run as root), stopped and removed
at the end. Each test that needs a database gets a throwaway one (`fresh_database`)."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.devcluster.postgres import PG_BIN, PostgresCluster
from tests.conftest import free_port

PG_HOST = "127.0.0.180"
_names = itertools.count()


def postgres_available() -> bool:
    return (PG_BIN / "initdb").exists() and (
        os.geteuid() != 0 or shutil.which("runuser") is not None
    )


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    if not postgres_available():
        pytest.skip(f"PostgreSQL server binaries not found under {PG_BIN}")
    directory = Path(tempfile.mkdtemp(prefix="logway-pg-"))
    directory.chmod(0o711)  # the cluster's own directory inside is the postgres user's
    cluster = PostgresCluster(directory / "cluster", host=PG_HOST, port=free_port(PG_HOST))
    with cluster:
        yield cluster
    shutil.rmtree(directory, ignore_errors=True)


def fresh_database(cluster: PostgresCluster) -> str:
    """The URL of a new, empty database in `cluster`."""
    return cluster.create_database(f"t{os.getpid()}_{next(_names)}")
