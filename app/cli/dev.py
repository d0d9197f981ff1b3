"""`logway dev`: a node reader over a real journald namespace, fed by sample tasks.

This is what `make run` starts until the gateway exists: one journald namespace, one
`logway node` on 127.0.0.2:61001 with token authentication, and two `logway ship` tasks
writing stdout and stderr lines. Ctrl-C or SIGTERM stops everything it started.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from app.devcluster.commands import logway_argv
from app.devcluster.journald import JournaldError, JournaldNamespace
from app.devcluster.keys import DevKeys

DATA_DIR = Path(".logway/dev")
NAMESPACE = "logway-dev"
READER_UID = "logway-gateway"
FRAMEWORK_ID = "dev-framework-0000"
AGENT_ID = "dev-agent-S0"
SUPERUSER = "admin"  # IamSettings' default superuser uid

SAMPLE_TASK = r"""
import itertools, sys, time
name = sys.argv[1]
for i in itertools.count():
    print(f"{name} request {i} served", flush=True)
    if i % 5 == 0:
        print(f"{name} warning {i}: slow upstream", file=sys.stderr, flush=True)
    time.sleep(1)
"""


def add_parser(commands: Any) -> None:
    p: argparse.ArgumentParser = commands.add_parser(
        "dev", help="run a local node reader with sample task logs (what `make run` starts)"
    )
    p.add_argument("--host", default="127.0.0.2")
    p.add_argument("--port", type=int, default=61001)
    p.add_argument("--namespace", default=NAMESPACE, help="journald namespace to start")
    p.add_argument("--gateway-host", default="127.0.0.1")
    p.add_argument("--gateway-port", type=int, default=8000)
    p.add_argument("--data-dir", type=Path, default=DATA_DIR)
    p.set_defaults(run=run)


def _wait_ready(url: str, token: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the node reader exited during start-up")
        try:
            r = httpx.get(url, headers={"Authorization": f"token={token}"}, timeout=1)
            if r.status_code in (200, 204):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the node reader did not answer in time")


def run(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        print(
            "logway dev needs root: it starts systemd-journald namespaces (run `sudo make run`).",
            file=sys.stderr,
        )
        return 1
    data_dir: Path = args.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    keys = DevKeys.create(data_dir / "keys")
    token = keys.token(READER_UID)
    token_path = data_dir / "token"
    token_path.write_text(token + "\n")
    token_path.chmod(0o600)
    password = _superuser_password(data_dir / "superuser-password")
    procs: list[subprocess.Popen[bytes]] = []
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        with JournaldNamespace(args.namespace) as ns:
            node = subprocess.Popen(
                logway_argv(
                    "node",
                    f"--journal-namespace={ns.name}",
                    "--log-level=WARNING",
                    f"--host={args.host}",
                    f"--port={args.port}",
                    f"--public-key={keys.public_path}",
                    f"--allow-uid={READER_UID}",
                )
            )
            procs.append(node)
            gateway = subprocess.Popen(
                logway_argv(
                    "gateway",
                    f"--host={args.gateway_host}",
                    f"--port={args.gateway_port}",
                    f"--data-dir={data_dir / 'gateway'}",
                    "--log-level=WARNING",
                ),
                env={**os.environ, "LOGWAY_IAM_SUPERUSER_PASSWORD": password},
            )
            procs.append(gateway)
            for app_name, container in (
                ("web", "dev-container-web"),
                ("worker", "dev-container-worker"),
            ):
                procs.append(
                    subprocess.Popen(
                        logway_argv(
                            "ship",
                            f"--journal-namespace={ns.name}",
                            f"--agent-id={AGENT_ID}",
                            f"--framework-id={FRAMEWORK_ID}",
                            f"--executor-id={app_name}.executor",
                            f"--container-id={container}",
                            f"--task-id={app_name}.task",
                            "--",
                            sys.executable,
                            "-c",
                            SAMPLE_TASK,
                            app_name,
                        )
                    )
                )
            base = f"http://{args.host}:{args.port}"
            _wait_ready(f"{base}/v1/range/?skip_prev=1", token, node)
            gateway_url = f"http://{args.gateway_host}:{args.gateway_port}"
            _wait_ready(f"{gateway_url}/acs/api/v1/auth/jwks", token, gateway)
            print_gateway_banner(gateway_url, password)
            print_banner(base, ns.name, token_path)
            while not stopping and all(p.poll() is None for p in procs):
                time.sleep(0.2)
    except (JournaldError, RuntimeError) as exc:
        print(f"logway dev: {exc}", file=sys.stderr)
        return 1
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    return 0


def _superuser_password(path: Path) -> str:
    """The dev superuser's password: generated once, kept (0600) so `make run` is repeatable."""
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(12) + "\n")
    return path.read_text().strip()


def print_gateway_banner(url: str, password: str) -> None:
    logway = Path(sys.executable).with_name("logway")
    print(
        f"""Gateway with the embedded IAM on {url}; superuser {SUPERUSER!r}, password {password!r}.

  echo '{password}' | {logway} login --url {url} --username {SUPERUSER} --password-stdin
  {logway} iam user list
""",
        flush=True,
    )


def print_banner(base: str, namespace: str, token_path: Path) -> None:
    auth = '-H "Authorization: token=$LOGWAY_TOKEN"'
    task = (
        f"{base}/v1/range/framework/{FRAMEWORK_ID}/executor/web.executor"
        "/container/dev-container-web"
    )
    print(
        f"""
Logway dev node reader is up on {base} (journal namespace {namespace}).

  export LOGWAY_TOKEN=$(cat {token_path})
  # last 10 lines of the whole journal
  curl -s {auth} '{base}/v1/range/?skip_prev=10'
  # one task's lines as NDJSON
  curl -s {auth} -H 'Accept: application/json' '{task}?skip_prev=5'
  # follow everything live (Ctrl-C to stop)
  curl -sN {auth} -H 'Accept: text/event-stream' '{base}/v1/stream/?skip_prev=3'

The token is for uid {READER_UID}. Ctrl-C stops everything.
""",
        flush=True,
    )
