"""A real `logway gateway` process with the cluster options, and node readers on one port."""

from __future__ import annotations

import contextlib
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

from app.devcluster.commands import node_argv
from tests.conftest import free_port
from tests.support.gateway import gateway as support_gateway
from tests.support.servers import stop, wait_http

GATEWAY_UID = "logway-gateway"


@contextlib.contextmanager
def gateway(
    data_dir: Path, *, password: str, mesos: str, reader_port: int, host: str = "127.0.0.4"
) -> Iterator[str]:
    """The shared test gateway, pointed at a Mesos master and a node reader port."""
    with support_gateway(
        data_dir, f"--mesos={mesos}", f"--reader-port={reader_port}", password=password, host=host
    ) as base:
        yield base


def port_free_on(hosts: tuple[str, ...]) -> int:
    """A port that is free on every one of `hosts` (all node readers listen on one port)."""
    for _ in range(50):
        port = free_port(hosts[0])
        try:
            for host in hosts[1:]:
                with socket.socket() as s:
                    s.bind((host, port))
        except OSError:
            continue
        return port
    raise RuntimeError(f"no common free port on {hosts}")


@contextlib.contextmanager
def node_readers(namespaces: dict[str, str], port: int, jwks_url: str) -> Iterator[dict[str, str]]:
    """`logway node` on each host:port over its namespace, trusting only the gateway's uid."""
    procs: list[subprocess.Popen[bytes]] = []
    urls: dict[str, str] = {}
    try:
        for host, namespace in namespaces.items():
            extra = (f"--jwks-url={jwks_url}", f"--allow-uid={GATEWAY_UID}")
            proc = subprocess.Popen(
                node_argv(namespace, host, port, *extra),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            procs.append(proc)
            urls[host] = f"http://{host}:{port}"
            wait_http(f"{urls[host]}/v1/fields/STREAM", proc)
        yield urls
    finally:
        for proc in procs:
            stop(proc)
            if proc.stdout:
                proc.stdout.close()
