"""What the console's browser tests share: a `logway dev` cluster on this module's own
addresses, a TCP relay in front of its gateway (to cut the browser's connections as a network
would), Debian's headless Chromium driven through chromium-driver, and a way to write lines
into a task's journal."""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.conftest import free_port
from tests.gateway.support import port_free_on

MASTER = "127.0.0.110"
AGENTS = ("127.0.0.111", "127.0.0.112")
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
READY_TIMEOUT = 180.0
ROOT = Path(__file__).resolve().parents[2]
FAST_HASHING = {"LOGWAY_IAM_SCRYPT_LOG2_N": "12"}  # for tests only


def browser_available() -> bool:
    return CHROMIUM.exists() and CHROMEDRIVER.exists()


@dataclass
class DevRun:
    proc: subprocess.Popen[str]
    data_dir: Path
    namespace: str
    output: list[str] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)

    def manifest(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads((self.data_dir / "cluster.json").read_text())
        return doc

    def task(self, app_id: str, index: int = 0) -> dict[str, Any]:
        found = [t for t in self.manifest()["tasks"] if t["app_id"] == app_id]
        return found[index]

    def agent_namespace(self, agent_id: str) -> str:
        ids = [a["id"] for a in self.manifest()["agents"]]
        return f"{self.namespace}-s{ids.index(agent_id)}"


def gateway_pid(run: DevRun) -> int:
    """The pid of the dev cluster's gateway (a child of `logway dev`, on the manifest's port)."""
    port = run.manifest()["gateway_url"].rsplit(":", 1)[1]
    pid = run.proc.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    for child in children:
        argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        if b"gateway" in argv and f"--port={port}".encode() in argv:
            return int(child)
    raise AssertionError(f"no gateway among the dev cluster's children {children}")


def start_dev(data_dir: Path, namespace: str) -> DevRun:
    ports = {
        "mesos": free_port(MASTER),
        "gateway": free_port(MASTER),
        "reader": port_free_on((MASTER, *AGENTS)),
    }
    argv = [
        sys.executable, "-m", "app.cli.main", "dev", f"--master-ip={MASTER}",
        *[f"--agent-ip={ip}" for ip in AGENTS],
        f"--mesos-port={ports['mesos']}", f"--gateway-port={ports['gateway']}",
        f"--reader-port={ports['reader']}", f"--namespace={namespace}", f"--data-dir={data_dir}",
    ]  # fmt: skip
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env={**os.environ, **FAST_HASHING},
    )
    run = DevRun(proc, data_dir, namespace)

    def drain() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            run.output.append(line)
            if line.strip() == "Ctrl-C stops everything.":
                run.ready.set()
        run.ready.set()

    threading.Thread(target=drain, daemon=True).start()
    if not run.ready.wait(READY_TIMEOUT) or proc.poll() is not None:
        stop_dev(run)
        raise RuntimeError("logway dev did not start:\n" + "".join(run.output))
    return run


def stop_dev(run: DevRun) -> None:
    if run.proc.poll() is None:
        run.proc.send_signal(signal.SIGINT)
        try:
            run.proc.wait(60)
        except subprocess.TimeoutExpired:
            run.proc.kill()
            run.proc.wait()
    if run.proc.stdout:
        run.proc.stdout.close()


class Relay:
    """A TCP relay to `target`: `cut()` closes every connection through it and refuses new
    ones until `restore()`, as a dropped network would."""

    def __init__(self, host: str, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server((host, 0))
        self.address = self.listener.getsockname()
        self.lock = threading.Lock()
        self.open: set[socket.socket] = set()
        self.refusing = False
        self.stopped = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.address[0]}:{self.address[1]}"

    def _accept(self) -> None:
        while not self.stopped:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.refusing:
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self.lock:
                self.open.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        sel = selectors.DefaultSelector()
        sel.register(a, selectors.EVENT_READ, b)
        sel.register(b, selectors.EVENT_READ, a)
        try:
            while True:
                for key, _ in sel.select():
                    src: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = src.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            sel.close()
            for s in (a, b):
                with self.lock:
                    self.open.discard(s)
                s.close()

    def cut(self) -> None:
        self.refusing = True
        with self.lock:
            for s in list(self.open):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def restore(self) -> None:
        self.refusing = False

    def close(self) -> None:
        self.stopped = True
        self.cut()
        self.listener.close()


class JournalWriter:
    """Writes entries straight into a node's journald namespace (its native socket), as
    `logway ship` does for a task."""

    def __init__(self, namespace: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.connect(f"/run/systemd/journal.{namespace}/socket")

    def send(self, fields: Mapping[str, str]) -> None:
        parts = []
        for key, value in fields.items():
            raw = value.encode()
            if b"\n" in raw:
                parts.append(key.encode() + b"\n" + len(raw).to_bytes(8, "little") + raw + b"\n")
            else:
                parts.append(key.encode() + b"=" + raw + b"\n")
        self.sock.sendall(b"".join(parts))

    def close(self) -> None:
        self.sock.close()


def task_fields(task: Mapping[str, Any], message: str, stream: str = "STDOUT") -> dict[str, str]:
    return {
        "MESSAGE": message,
        "STREAM": stream,
        "AGENT_ID": task["agent_id"],
        "FRAMEWORK_ID": task["framework_id"],
        "EXECUTOR_ID": task["executor_id"],
        "CONTAINER_ID": task["container_id"],
        "TASK_ID": task["id"],
        "SYSLOG_IDENTIFIER": "console-test",
    }


def new_browser(download_dir: Path) -> Any:
    """Debian's chromium, headless, through /usr/bin/chromedriver: Selenium Manager is told
    to stay offline and is never asked for a driver or a browser."""
    os.environ["SE_OFFLINE"] = "true"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--window-size=1280,800", "--no-first-run", "--disable-extensions",
        "--disable-background-networking", "--disable-component-update",
    ):  # fmt: skip
        options.add_argument(arg)
    options.add_experimental_option(
        "prefs",
        {
            "download.default_directory": str(download_dir),
            "download.prompt_for_download": False,
            "safebrowsing.enabled": False,
        },
    )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_script_timeout(30)
    return driver


def wait_for(check: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
    """Poll `check` (a browser query: the page gives no event to await from here)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as exc:  # a stale element while the view re-renders
            last = exc
        else:
            if last:
                return last
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or check}: last {last!r}")
