"""`logway dev` (what `make run` starts), end to end: a real `logway dev` process on its own
addresses and ports; every command it prints is run as printed (bash, curl) and must show
the sample lines it promises; SIGINT then leaves no process, namespace or listener behind."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from app.devcluster.banner import DCOS_CLI
from app.devcluster.journald import JournaldNamespace
from app.gateway.logs import router as gateway_logs
from app.node.routes import router as node_routes
from tests.conftest import free_port, journald_available, new_namespace_name
from tests.gateway.support import port_free_on

pytestmark = pytest.mark.skipif(not journald_available(), reason="needs root and journald")

MASTER, AGENTS = "127.0.0.31", ("127.0.0.32", "127.0.0.33")
READY_TIMEOUT = 180.0  # the whole cluster, on a busy 2-core machine
COMMAND_TIMEOUT = 30.0
DCOS = DCOS_CLI / "dcos"
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Dev:
    proc: subprocess.Popen[str]
    namespace: str
    data_dir: Path
    ports: dict[str, int]
    output: list[str] = field(default_factory=list)
    banner_done: threading.Event = field(default_factory=threading.Event)

    @property
    def lines(self) -> list[str]:
        return [ln.strip() for ln in list(self.output)]

    def command(self, pattern: str) -> str:
        """The one printed command line matching `pattern` (a regex)."""
        found = [ln for ln in self.lines if re.search(pattern, ln)]
        assert len(found) == 1, (pattern, found)
        return found[0]

    @property
    def curls(self) -> list[str]:
        return [ln for ln in self.lines if ln.startswith("curl ")]

    @property
    def mesos_url(self) -> str:
        return f"http://{MASTER}:{self.ports['mesos']}"


def drain(dev: Dev) -> None:
    """Keep reading what `logway dev` and its children print, so no pipe ever fills."""
    assert dev.proc.stdout is not None
    for line in dev.proc.stdout:
        dev.output.append(line)
        if line.strip() == "Ctrl-C stops everything.":
            dev.banner_done.set()
    dev.banner_done.set()  # exited: let the waiter see it


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    data_dir = tmp_path_factory.mktemp("dev") / "data"
    namespace = new_namespace_name()
    ports = {
        "mesos": free_port(MASTER),
        "gateway": free_port(MASTER),
        "reader": port_free_on((MASTER, *AGENTS)),  # every reader listens on one port
    }
    argv = [
        sys.executable,
        "-m",
        "app.cli.main",
        "dev",
        f"--master-ip={MASTER}",
        *(f"--agent-ip={ip}" for ip in AGENTS),
        f"--mesos-port={ports['mesos']}",
        f"--gateway-port={ports['gateway']}",
        f"--reader-port={ports['reader']}",
        f"--namespace={namespace}",
        f"--data-dir={data_dir}",
    ]
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env={**os.environ, "LOGWAY_IAM_SCRYPT_LOG2_N": "12"},  # fast hashing for tests only
    )
    run = Dev(proc, namespace, data_dir, ports)
    reader = threading.Thread(target=drain, args=(run,), daemon=True)
    reader.start()
    try:
        assert run.banner_done.wait(READY_TIMEOUT), "no banner:\n" + "".join(run.output)
        assert proc.poll() is None, "logway dev exited:\n" + "".join(run.output)
        yield run
    finally:
        if proc.poll() is None:  # the last test normally stops it
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        reader.join(10)
        if proc.stdout:
            proc.stdout.close()


def sh(dev: Dev, *commands: str, env: dict[str, str] | None = None) -> str:
    """The token line, then `commands`, as pasted into bash; their stdout."""
    script = " && ".join([dev.command(r"^export LOGWAY_TOKEN="), *commands])
    done = subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        env=env,
        cwd="/",  # the printed commands work from anywhere
    )
    assert done.returncode == 0, (script, done.stderr)
    return done.stdout


def run_until(dev: Dev, command: str, done: Callable[[str], bool]) -> str:
    """Run `command` until its output satisfies `done`: right after start-up the sample tasks
    and services may not have written as many lines as a command asks for."""
    deadline = time.monotonic() + COMMAND_TIMEOUT
    while True:
        out = sh(dev, command)
        if done(out) or time.monotonic() > deadline:
            return out
        time.sleep(0.5)


def text_lines(out: str) -> list[str]:
    """Messages of text-format lines (`YYYY-MM-DD HH:MM:SS: MESSAGE`)."""
    lines = out.splitlines()
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d: ", ln) for ln in lines), out
    return [ln.split(": ", 1)[1] for ln in lines]


def sim_task(dev: Dev, id_prefix: str) -> dict[str, object]:
    state = httpx.get(f"{dev.mesos_url}/master/state", timeout=10).json()
    tasks = [t for f in state["frameworks"] for t in f["tasks"] if t["id"].startswith(id_prefix)]
    assert len(tasks) == 1, tasks
    task: dict[str, object] = tasks[0]
    return task


def container_chain(task: dict[str, object]) -> str:
    cid = task["statuses"][0]["container_status"]["container_id"]  # type: ignore[index]
    chain = []
    while cid:
        chain.append(cid["value"])
        cid = cid.get("parent")
    return ".".join(reversed(chain))


def test_every_curl_line_is_one_this_test_runs(dev: Dev) -> None:
    covered = (
        r"/system/v1/logs/v1/range/\?skip_prev=5'$",
        r"/system/v1/agent/[^/]+/logs/v1/range/\?skip_prev=10'$",
        r"Accept: application/json.*/logs/v1/range/framework/.*/executor/dev_api\.",
        r"/logs/v1/range/framework/.*/executor/instance-dev_batch\.",
        r"/system/v1/leader/mesos/logs/v1/range/\?skip_prev=5'$",
        r"-N -H 'Accept: text/event-stream'.*/logs/v1/stream/\?skip_prev=3'$",
        r"/system/v1/logs/v2/task/api\.dev/file/stdout\?cursor=END&skip=-5'$",
    )
    assert sorted(dev.curls) == sorted(dev.command(pattern) for pattern in covered)
    token = sh(dev, 'echo "$LOGWAY_TOKEN"').strip()
    assert token.count(".") == 2  # a JWT


def test_master_and_leader_journals_show_the_master_service(dev: Dev) -> None:
    # journald's own first lines ("Journal started", …) come before the service's.
    def five_service_lines(out: str) -> bool:
        lines = out.splitlines()
        return len(lines) == 5 and all(": mesos-master: allocation cycle " in ln for ln in lines)

    for pattern in (r"/system/v1/logs/v1/range/\?", r"/leader/mesos/logs/v1/range/"):
        messages = text_lines(run_until(dev, dev.command(pattern), five_service_lines))
        assert len(messages) == 5, messages
        assert all(m.startswith("mesos-master: allocation cycle ") for m in messages), messages


def test_an_agents_whole_journal_has_its_tasks_and_service(dev: Dev) -> None:
    # Ten lines from a task and a service each writing every second: both are there.
    def both(out: str) -> bool:
        return "/dev/api request served " in out and "mesos-agent: status update round " in out

    out = run_until(dev, dev.command(r"/logs/v1/range/\?skip_prev=10'$"), both)
    messages = text_lines(out)
    assert len(messages) == 10, messages
    assert any(m.startswith("/dev/api request served ") for m in messages), messages
    assert any(m.startswith("mesos-agent: status update round ") for m in messages), messages
    assert not any(m.startswith(("/prod/web", "/dev/batch", "mesos-master")) for m in messages)


def test_a_tasks_v1_range_has_its_lines_under_the_simulators_ids(dev: Dev) -> None:
    out = run_until(dev, dev.command(r"executor/dev_api\."), lambda o: len(o.splitlines()) == 5)
    entries = [json.loads(line)["fields"] for line in out.splitlines()]
    assert len(entries) == 5, out
    task = sim_task(dev, "dev_api.")
    for fields in entries:
        assert fields["MESSAGE"].startswith("/dev/api "), fields
        assert fields["STREAM"] in ("STDOUT", "STDERR")
        assert fields["FRAMEWORK_ID"] == task["framework_id"]
        assert fields["AGENT_ID"] == task["slave_id"]
        assert fields["TASK_ID"] == task["id"]
        assert task["executor_id"] == ""  # command executor: the task id stands in
        assert fields["EXECUTOR_ID"] == task["id"]
        assert fields["CONTAINER_ID"] == container_chain(task)


def test_a_pod_tasks_nested_container_route(dev: Dev) -> None:
    command = dev.command(r"executor/instance-dev_batch\.")
    task = sim_task(dev, "dev_batch.instance-")
    chain = container_chain(task)
    assert chain.count(".") == 1  # parent.child
    assert f"/executor/{task['executor_id']}/container/{chain}?" in command
    messages = text_lines(run_until(dev, command, lambda out: len(out.splitlines()) == 5))
    assert len(messages) == 5, messages
    assert all(m.startswith("/dev/batch/worker ") for m in messages), messages


def test_the_follow_line_streams_new_lines(dev: Dev) -> None:
    script = f"{dev.command(r'^export LOGWAY_TOKEN=')} && {dev.command(r'/v1/stream/')}"
    proc = subprocess.Popen(
        ["bash", "-c", script], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    events: list[dict[str, object]] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + COMMAND_TIMEOUT
        # skip_prev=3 gives three past lines; a fourth can only be a live one.
        while len(events) < 5 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "the stream ended"
            if line.startswith("data: "):
                events.append(json.loads(line[len("data: ") :]))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
        if proc.stdout:
            proc.stdout.close()
    assert len(events) == 5, events
    messages = [e["fields"]["MESSAGE"] for e in events]  # type: ignore[index]
    assert all(m.startswith(("/prod/web ", "/dev/batch/worker ", "mesos-agent:")) for m in messages)
    stamps = [int(str(e["realtime_timestamp"])) for e in events]
    assert stamps == sorted(stamps)


V2_READY = any("/v2/task/" in getattr(r, "path", "") for r in gateway_logs.routes) and any(
    "/v2/task/frameworks/" in getattr(r, "path", "") for r in node_routes.routes
)


@pytest.mark.skipif(not V2_READY, reason="the gateway's or the node's v2 task route is missing")
def test_the_v2_task_line_reads_the_tasks_stdout_by_name(dev: Dev) -> None:
    messages = sh(dev, dev.command(r"/logs/v2/task/")).splitlines()
    assert 1 <= len(messages) <= 5, messages
    assert all(re.fullmatch(r"/dev/api request served \d+", m) for m in messages), messages


def test_the_login_line_logs_in(dev: Dev, tmp_path: Path) -> None:
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path)}
    out = sh(dev, dev.command(r" login --url "), env=env)
    assert "logged in" in out
    assert (tmp_path / "logway" / "credentials.json").exists()


def test_the_dcos_cli_lines(dev: Dev) -> None:
    if not DCOS.exists():
        pytest.skip("the dcos CLI is not installed (bash ../shared/tools/install-dcos-cli.sh)")
    setup = dev.command(r"^export PATH=.*DCOS_DIR=")
    leader = sh(dev, setup, dev.command(r"^dcos node log --leader$"))
    assert "mesos-master: allocation cycle" in leader, leader
    follow = dev.command(r"^dcos task log --follow ")
    # --follow never ends by itself: 124 is timeout's status for "had to stop it".
    out = sh(dev, setup, f"{{ timeout 8 {follow} || [ $? = 124 ]; }}")
    assert "/dev/api request served" in out, out


def _descendants(pid: int) -> dict[int, str]:
    """pid -> start time of every process under `pid` (a pid reused later has another)."""
    found: dict[int, str] = {}
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                start = _start_time(child)
                if start is not None:
                    found[child] = start
                    todo.append(child)
    return found


def _start_time(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def test_sigint_stops_every_process_and_namespace(dev: Dev) -> None:
    # Runs last (file order): it ends the module's cluster.
    children = _descendants(dev.proc.pid)
    names = [Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ") for pid in children]
    # 3 journalds, a gateway, 3 readers, 3 shippers and their 3 tasks.
    assert len(children) == 13, names
    dev.proc.send_signal(signal.SIGINT)
    assert dev.proc.wait(60) == 0, "".join(dev.output)
    assert [pid for pid, start in children.items() if _start_time(pid) == start] == []
    for node in ("master", "s0", "s1"):
        ns = JournaldNamespace(f"{dev.namespace}-{node}")
        assert not ns.directory.exists()
        assert not ns.runtime_dir.exists()
        assert not ns.conf_path.exists()
    leftovers = subprocess.run(
        ["pgrep", "-f", dev.namespace], capture_output=True, text=True
    ).stdout.split()
    assert leftovers == []
    for host, port in [(MASTER, dev.ports["mesos"]), (MASTER, dev.ports["gateway"])] + [
        (host, dev.ports["reader"]) for host in (MASTER, *AGENTS)
    ]:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT: none listens
            s.bind((host, port))
