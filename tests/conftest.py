"""Shared fixtures: real journald namespaces (root only) and free loopback ports."""

from __future__ import annotations

import itertools
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.devcluster.journald import JOURNALD, JournaldNamespace

_counter = itertools.count()


def journald_available() -> bool:
    return os.geteuid() == 0 and JOURNALD.exists() and Path("/etc/machine-id").exists()


requires_journald = pytest.mark.skipif(
    not journald_available(), reason="needs root and /lib/systemd/systemd-journald"
)


def new_namespace_name() -> str:
    return f"lwtest{os.getpid()}x{next(_counter)}x{uuid.uuid4().hex[:6]}"


@pytest.fixture
def journal_namespace() -> Iterator[JournaldNamespace]:
    """A fresh, empty journald namespace, stopped and removed after the test."""
    if not journald_available():
        pytest.skip("needs root and /lib/systemd/systemd-journald")
    with JournaldNamespace(new_namespace_name()) as ns:
        yield ns


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


# The PostgreSQL cluster the IAM tests run against (tests/support/postgres.py).
from tests.support.postgres import pg_cluster  # noqa: E402, F401
