"""SIGTERM with follows open (issue 12 §6): every stream ends cleanly at once, an event stream
with a last comment naming the shutdown, and the process exits without a traceback."""

from __future__ import annotations

import signal
import subprocess
import time

import httpx

from app.core.graceful import SHUTDOWN_COMMENT
from app.devcluster.commands import node_argv
from app.devcluster.journald import JournaldNamespace
from tests.conftest import free_port
from tests.support.journal import Sender
from tests.support.servers import stop, wait_http

HOST = "127.0.0.141"
STREAMS = 3


def test_sigterm_ends_every_follow_cleanly(journal_namespace: JournaldNamespace) -> None:
    sender = Sender(journal_namespace)
    sender.send({"MESSAGE": "before the shutdown"})
    sender.sync()
    sender.close()
    port = free_port(HOST)
    base = f"http://{HOST}:{port}"
    argv = node_argv(journal_namespace.name, HOST, port, "--no-auth", "--log-level=INFO")
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_http(f"{base}/v1/fields/STREAM", proc)
        with httpx.Client(timeout=20) as client:
            opened = []
            for n in range(STREAMS):
                accept = "text/event-stream" if n else "text/plain"  # one non-SSE follow too
                cm = client.stream(
                    "GET", f"{base}/v1/stream/?skip_prev=1", headers={"Accept": accept}
                )
                response = cm.__enter__()
                chunks = response.iter_raw()
                assert b"before the shutdown" in next(chunks)
                opened.append((cm, response, chunks))
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            for n, (cm, _, chunks) in enumerate(opened):
                rest = b"".join(chunks)  # raises if the chunked body is cut, not ended
                assert (SHUTDOWN_COMMENT in rest) == bool(n), rest
                cm.__exit__(None, None, None)
            # uvicorn re-raises the signal it caught once it has shut down.
            assert proc.wait(10) in (0, -signal.SIGTERM)
            assert time.monotonic() - started < 2  # at once, not after the grace period
    finally:
        stop(proc)
        output = proc.stdout.read().decode() if proc.stdout else ""
        if proc.stdout:
            proc.stdout.close()
    assert "Traceback" not in output, output
    assert "Cancel" not in output, output  # uvicorn's "Cancel N running task(s)"
