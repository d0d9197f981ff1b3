"""`logway logs` end to end: the real command (`python -m app.cli.main logs …`, a subprocess)
against a real dev cluster (journald namespaces, node readers, the Mesos simulator, the
gateway with its IAM, sample tasks under `logway ship`) on 127.0.0.51 (master) and .52/.53
(agents). What the command prints is checked against what the gateway itself answers.

A follow is cut twice through a TCP relay the test controls (connections closed while it
still listens; then closed and refused for a while) and must print every line once."""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import pytest

from app.cli.credentials import Credentials
from app.devcluster.cluster import (
    DEV_BATCH,
    PROD_WEB,
    DevCluster,
    DevClusterConfig,
    SampleTask,
    build,
)
from app.devcluster.supervisor import Supervisor
from tests.conftest import free_port, journald_available, new_namespace_name
from tests.gateway.support import add_user, grant, login, port_free_on
from tests.support.wait import wait_for

pytestmark = pytest.mark.skipif(not journald_available(), reason="needs root and journald")

MASTER, AGENTS = "127.0.0.51", ("127.0.0.52", "127.0.0.53")
PASSWORD = "logs cli test password"
ROOT = Path(__file__).resolve().parents[2]
COMMAND_TIMEOUT = 60.0
LINES_TIMEOUT = 60.0  # the sample tasks write about a line a second
SHORT_LINE = re.compile(r"^[A-Z][a-z]{2} \d{2} \d{2}:\d{2}:\d{2} \S+ \S+: ")


@dataclass
class Dev:
    cluster: DevCluster
    url: str
    token: str
    config_home: Path  # an empty one: no stored login leaks in from the machine

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"token={self.token}"}

    def task(self, app_id: str) -> SampleTask:
        return self.cluster.task_for(app_id)

    @property
    def dev_task(self) -> SampleTask:
        """A /dev app's task that is not in a pod (its id is its only name we rely on)."""
        return next(
            t for t in self.cluster.tasks if t.app_id.startswith("/dev/") and t.app_id != DEV_BATCH
        )


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    tmp = tmp_path_factory.mktemp("logs-cli")
    config = DevClusterConfig(
        master_ip=MASTER,
        agent_ips=AGENTS,
        mesos_port=free_port(MASTER),
        reader_port=port_free_on((MASTER, *AGENTS)),
        gateway_port=free_port(MASTER),
        namespace=new_namespace_name(),
        data_dir=tmp / "dev",
    )
    cluster = build(config, python=sys.executable)
    env = {**os.environ, "LOGWAY_IAM_SCRYPT_LOG2_N": "12"}  # fast hashing, tests only
    with Supervisor(cluster, password=PASSWORD, env=env):
        admin = login(cluster.gateway_url, "admin", PASSWORD)
        token = admin["Authorization"].removeprefix("token=")
        yield Dev(cluster, cluster.gateway_url, token, tmp / "config")


def command_env(dev: Dev, token: str | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOGWAY_") and k != "NO_COLOR"}
    env.update(XDG_CONFIG_HOME=str(dev.config_home), LOGWAY_URL=dev.url)
    if token is not None:
        env["LOGWAY_TOKEN"] = token
    env.update(extra)
    return env


def argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "app.cli.main", "logs", *args]


def logs(
    dev: Dev, *args: str, token: str | None = "admin", **extra: str
) -> subprocess.CompletedProcess[str]:
    env = command_env(dev, dev.token if token == "admin" else token, **extra)
    done = subprocess.run(
        argv(*args), capture_output=True, text=True, env=env, cwd=ROOT, timeout=COMMAND_TIMEOUT
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def ok(done: subprocess.CompletedProcess[str]) -> list[str]:
    assert done.returncode == 0, (done.args, done.stderr)
    return done.stdout.splitlines()


# --- What the gateway itself says -------------------------------------------------------------


def entries(dev: Dev, path: str, **params: str | int) -> list[dict[str, object]]:
    r = httpx.get(
        dev.url + path, params=params, headers={**dev.admin, "Accept": "application/json"}
    )
    assert r.status_code in (200, 204), (path, r.status_code, r.text)
    return [orjson.loads(line) for line in r.content.splitlines() if line.strip()]


def task_path(task: SampleTask, file: str = "stdout") -> str:
    return f"/system/v1/logs/v2/task/{task.task.id}/file/{file}"


def messages(dev: Dev, task: SampleTask, file: str = "stdout", last: int = 500) -> list[str]:
    found = entries(dev, task_path(task, file), skip=-last)
    return [str(e["fields"]["MESSAGE"]) for e in found]  # type: ignore[index]


def wait_lines(dev: Dev, task: SampleTask, file: str, count: int) -> list[str]:
    return wait_for(
        f"{count} {file} lines of {task.task.id}",
        lambda: found if len(found := messages(dev, task, file)) >= count else None,
        timeout=LINES_TIMEOUT,
        step=0.5,
    )


def wait_entries(dev: Dev, path: str, count: int, **params: str | int) -> None:
    """Until `path` has `count` entries (right after start-up a journal may have fewer)."""
    wait_for(
        f"{count} entries at {path}",
        lambda: True if len(entries(dev, path, **params)) >= count else None,
        timeout=LINES_TIMEOUT,
        step=0.5,
    )


def assert_run_of(lines: list[str], full: list[str]) -> None:
    """`lines` is a contiguous run of `full`: nothing missing between them, nothing twice."""
    assert lines, "no lines"
    assert lines[0] in full, (lines[0], full[-5:])
    start = full.index(lines[0])
    assert full[start : start + len(lines)] == lines


# --- Ranges ------------------------------------------------------------------------------------


def test_task_stdout_and_stderr(dev: Dev) -> None:
    task = dev.dev_task
    wait_lines(dev, task, "stdout", 6)
    wait_lines(dev, task, "stderr", 4)
    out = ok(logs(dev, "task", task.task.id, "-n", "5"))
    assert len(out) == 5
    assert_run_of(out, messages(dev, task, "stdout"))
    err = ok(logs(dev, "task", task.task.id, "stderr", "-n", "3"))
    assert len(err) == 3
    assert_run_of(err, messages(dev, task, "stderr"))
    assert not set(err) & set(messages(dev, task, "stdout"))
    # By name too, when the name is the task's alone.
    names = [t.task.name for t in dev.cluster.tasks]
    if names.count(task.task.name) == 1:
        assert_run_of(ok(logs(dev, "task", task.task.name, "-n", "2")), messages(dev, task))


def test_a_pod_task(dev: Dev) -> None:
    task = dev.task(DEV_BATCH)
    wait_lines(dev, task, "stdout", 3)
    out = ok(logs(dev, "task", task.task.id, "-n", "3"))
    assert len(out) == 3
    assert_run_of(out, messages(dev, task))


def test_lines(dev: Dev) -> None:
    task = dev.dev_task
    wait_lines(dev, task, "stdout", 12)
    assert len(ok(logs(dev, "task", task.task.id))) == 10  # the default
    assert ok(logs(dev, "task", task.task.id, "-n", "0")) == []
    everything = ok(logs(dev, "task", task.task.id, "-n", "all"))
    assert everything[0] == messages(dev, task, last=100_000)[0]  # from the first line
    assert_run_of(everything, messages(dev, task, last=100_000))


def test_since(dev: Dev) -> None:
    task = dev.dev_task
    wait_lines(dev, task, "stdout", 4)
    newest = entries(dev, task_path(task), skip=-3)
    since = int(newest[0]["realtime_timestamp"])  # type: ignore[call-overload]
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(since // 1_000_000))
    stamp += f".{since % 1_000_000:06d}Z"
    out = ok(logs(dev, "task", task.task.id, "--since", stamp))
    # Every line from that entry on (at least the three, more if the task wrote since).
    assert out[: len(newest)] == [e["fields"]["MESSAGE"] for e in newest]  # type: ignore[index]
    assert_run_of(out, messages(dev, task))
    recent = ok(logs(dev, "task", task.task.id, "--since", "1h", "-n", "2"))
    assert len(recent) == 2


def test_node_journals(dev: Dev) -> None:
    cluster = dev.cluster
    master_ident = cluster.master.service.identifier
    wait_entries(dev, f"/system/v1/logs/v2/component/{cluster.master.service.unit}", 5, skip=-5)
    for source in ("master", "leader"):
        out = ok(logs(dev, source, "-n", "5"))
        assert len(out) == 5
        assert all(SHORT_LINE.match(line) for line in out), out
        assert any(f" {master_ident}[" in line for line in out), out
    agent = cluster.agents[0]
    on_agent = [t for t in cluster.tasks if t.agent_id == agent.agent_id]
    assert on_agent
    assert agent.agent_id is not None
    wait_entries(dev, f"/system/v1/agent/{agent.agent_id}/logs/v1/range/", 40, skip_prev=40)

    def agent_lines() -> list[str] | None:
        out = ok(logs(dev, "agent", agent.agent_id or "", "-n", "40"))
        idents = {t.task.name for t in on_agent}
        return out if any(line.split(" ")[4].split("[")[0] in idents for line in out) else None

    out = wait_for("a task line in the agent's journal", agent_lines, timeout=LINES_TIMEOUT)
    assert len(out) == 40
    assert all(SHORT_LINE.match(line) for line in out), out
    assert not any(f" {master_ident}[" in line for line in out)


def test_unit(dev: Dev) -> None:
    cluster = dev.cluster
    master_unit = cluster.master.service.unit
    for node in (cluster.master, cluster.agents[1]):
        where = f"/system/v1/agent/{node.agent_id}/logs" if node.agent_id else "/system/v1/logs"
        wait_entries(dev, f"{where}/v2/component/{node.service.unit}", 10, skip=-10)
    out = ok(logs(dev, "leader", "--unit", master_unit.removesuffix(".service"), "-o", "json"))
    assert len(out) == 10
    assert {orjson.loads(line)["fields"]["UNIT"] for line in out} == {master_unit}
    agent = cluster.agents[1]
    unit = agent.service.unit
    out = ok(logs(dev, "agent", agent.agent_id or "", "--unit", unit, "-n", "3", "-o", "json"))
    assert len(out) == 3
    assert {orjson.loads(line)["fields"]["UNIT"] for line in out} == {unit}
    text = ok(logs(dev, "master", "--unit", master_unit, "-n", "2"))
    assert len(text) == 2
    assert all(f" {cluster.master.service.identifier}[" in line for line in text), text


def test_filter(dev: Dev) -> None:
    agent = dev.cluster.agents[0]
    assert agent.agent_id is not None
    task = next(t for t in dev.cluster.tasks if t.agent_id == agent.agent_id)
    wait_lines(dev, task, "stderr", 3)
    wait_lines(dev, task, "stdout", 4)
    out = ok(
        logs(dev, "agent", agent.agent_id, "--filter", "STREAM:STDERR", "-n", "3", "-o", "json")
    )
    assert len(out) == 3
    assert {orjson.loads(line)["fields"]["STREAM"] for line in out} == {"STDERR"}
    # One field's values are ORed, fields ANDed.
    out = ok(
        logs(
            dev,
            "agent",
            agent.agent_id,
            "--filter",
            f"TASK_ID:{task.task.id}",
            "--filter",
            "TASK_ID:no-such-task",
            "--filter",
            "stream:STDOUT",
            "-o",
            "raw",
            "-n",
            "4",
        )
    )
    assert len(out) == 4
    assert_run_of(out, messages(dev, task))
    # A task's lines can be narrowed, not widened: the gateway's 400 is bad usage.
    stderr = ok(logs(dev, "task", task.task.id, "stderr", "--filter", "STREAM:STDERR"))
    assert_run_of(stderr, messages(dev, task, "stderr"))
    done = logs(dev, "task", task.task.id, "--filter", "STREAM:STDERR")
    assert done.returncode == 2
    assert "bad request (400): filter STREAM:STDERR contradicts" in done.stderr


def test_json_and_raw(dev: Dev) -> None:
    task = dev.dev_task
    wait_lines(dev, task, "stdout", 4)
    out = ok(logs(dev, "task", task.task.id, "-n", "4", "-o", "json"))
    objs = [orjson.loads(line) for line in out]
    assert len(objs) == 4
    assert all(
        set(o) == {"fields", "cursor", "monotonic_timestamp", "realtime_timestamp"} for o in objs
    )
    assert all(o["fields"]["TASK_ID"] == task.task.id for o in objs)
    assert_run_of([o["fields"]["MESSAGE"] for o in objs], messages(dev, task))
    wait_entries(dev, "/system/v1/logs/v1/range/", 3, skip_prev=3)
    raw = subprocess.run(
        argv("master", "-n", "3", "-o", "raw"),
        capture_output=True,
        env=command_env(dev, dev.token),
        cwd=ROOT,
        timeout=COMMAND_TIMEOUT,
        check=True,
    ).stdout
    lines = raw.split(b"\n")
    assert lines[-1] == b""
    assert len(lines) == 4
    master_lines = entries(dev, "/system/v1/logs/v1/range/", skip_prev=200)
    assert_run_of(
        [line.decode() for line in lines[:-1]],
        [str(e["fields"].get("MESSAGE")) for e in master_lines],  # type: ignore[attr-defined]
    )


def test_role_and_app_merge_every_agent(dev: Dev) -> None:
    tasks = dev.cluster.tasks
    role = dev.dev_task.task.role
    assert role
    in_role = {t.task.id for t in tasks if t.task.role == role}
    # Right after start-up the role may have written fewer than 8 lines.
    wait_entries(dev, f"/system/v1/logs/v1/role/{role}/range/", 8, skip_prev=8)
    out = ok(logs(dev, "role", role, "-n", "8", "-o", "json"))
    found = [orjson.loads(line) for line in out]
    assert len(found) == 8
    assert {e["fields"]["TASK_ID"] for e in found} <= in_role
    times = [e["realtime_timestamp"] for e in found]
    assert times == sorted(times)  # one time order across agents
    prod = [t for t in tasks if t.app_id == PROD_WEB]
    for task in prod:
        wait_lines(dev, task, "stdout", 5)
    # Without the leading slash too; a group covers its apps.
    for app in (PROD_WEB.lstrip("/"), PROD_WEB.rsplit("/", 1)[0]):
        out = ok(logs(dev, "app", app, "-n", "12", "-o", "json"))
        found = [orjson.loads(line) for line in out]
        assert len(found) == 12
        assert {e["fields"]["TASK_ID"] for e in found} == {t.task.id for t in prod}
    text = ok(logs(dev, "app", PROD_WEB, "-n", "3"))
    assert len(text) == 3
    names = {f" {t.task.name}[" for t in prod}
    assert all(SHORT_LINE.match(line) and any(n in line for n in names) for line in text), text


def test_a_merged_follow_of_new_lines_only(dev: Dev) -> None:
    """`-n 0 -f` on a merged read starts from the composite cursor of its newest entry."""
    path = f"/system/v1/logs/v1/app{PROD_WEB}/range/"
    before = {e["cursor"] for e in entries(dev, path, skip_prev=200)}
    with running(
        argv("app", PROD_WEB, "-f", "-n", "0", "-o", "json"), command_env(dev, dev.token)
    ) as r:
        r.wait_out(4)
        assert r.interrupt() == 0
    followed = [orjson.loads(line)["cursor"] for line in r.out]
    assert not set(followed) & before
    assert len(set(followed)) == len(followed)


# --- With Marathon's lines (issue 18) ----------------------------------------------------------

MARATHON_UNIT = "dcos-marathon.service"
NAMES_APP = r"(?<![A-Za-z0-9._/-]){}(?![A-Za-z0-9._-])"


def names(message: str, *app_ids: str) -> bool:
    return any(re.search(NAMES_APP.format(re.escape(a)), message) for a in app_ids)


def is_marathon(e: dict[str, object]) -> bool:
    return e["fields"].get("UNIT") == MARATHON_UNIT  # type: ignore[union-attr]


def test_app_with_scheduler_interleaves_marathons_lines_in_time_order(dev: Dev) -> None:
    prod = {t.task.id for t in dev.cluster.tasks if t.app_id == PROD_WEB}
    path = "/system/v1/logs/v1/app/prod/range/"
    wait_for(
        "Marathon's lines about /prod",
        lambda: (
            True
            if any(map(is_marathon, entries(dev, path, include="scheduler", skip_prev=10)))
            else None
        ),
        timeout=LINES_TIMEOUT,
        step=0.5,
    )
    out = ok(logs(dev, "app", "/prod", "--with-scheduler", "-n", "10", "-o", "json"))
    found = [orjson.loads(line) for line in out]
    assert len(found) == 10
    marathon = [e for e in found if is_marathon(e)]
    tasks = [e for e in found if not is_marathon(e)]
    assert marathon, found  # both kinds of line …
    assert tasks, found
    assert {e["fields"]["TASK_ID"] for e in tasks} <= prod
    for e in marathon:  # … Marathon's only where they name /prod or an app below it
        assert names(e["fields"]["MESSAGE"], "/prod/web"), e
        assert "AGENT_ID" not in e["fields"]
    times = [e["realtime_timestamp"] for e in found]
    assert times == sorted(times)  # one time order
    # Without the option: the app's own lines only.
    plain = [orjson.loads(line) for line in ok(logs(dev, "app", "/prod", "-n", "10", "-o", "json"))]
    assert not any(map(is_marathon, plain))
    # Text on a pipe: Marathon's lines as journalctl shows them, beside the tasks'.
    text = ok(logs(dev, "app", "/prod", "--with-scheduler", "-n", "10"))
    assert any(re.search(r" marathon(\[\d+\])?: marathon: .*/prod/web", line) for line in text), (
        text
    )
    assert all(SHORT_LINE.match(line) for line in text), text


def test_role_with_scheduler_keeps_the_lines_naming_the_roles_apps(dev: Dev) -> None:
    role = dev.dev_task.task.role
    dev_apps = sorted({t.app_id for t in dev.cluster.tasks if t.task.role == role})
    path = f"/system/v1/logs/v1/role/{role}/range/"
    found = wait_for(
        "Marathon's lines about the role's apps",
        lambda: (
            got
            if sum(map(is_marathon, got := entries(dev, path, include="scheduler", skip_prev=80)))
            >= 2
            else None
        ),
        timeout=LINES_TIMEOUT,
        step=0.5,
    )
    for e in filter(is_marathon, found):
        assert names(e["fields"]["MESSAGE"], *dev_apps), e  # never /prod/web's, nor "declined"
    # Marathon did write about other apps meanwhile: the filter left those out.
    master = entries(dev, f"/system/v1/leader/marathon/logs/v2/component/{MARATHON_UNIT}", skip=-20)
    assert any(not names(str(e["fields"]["MESSAGE"]), *dev_apps) for e in master)  # type: ignore[index]


def test_a_resumed_range_with_scheduler_goes_on_exactly(dev: Dev) -> None:
    """The composite cursor of an event resumes every source, Marathon's included, after
    exactly its own last line."""
    path = "/system/v1/logs/v1/app/prod/range/"
    headers = {**dev.admin, "Accept": "text/event-stream"}
    first = httpx.get(
        dev.url + path, params={"include": "scheduler", "skip_prev": 30}, headers=headers
    )
    assert first.status_code == 200, first.text
    events = [
        (line.removeprefix("id: "), orjson.loads(data.removeprefix("data: ")))
        for line, data in (
            block.split("\n")[:2] for block in first.text.split("\n\n") if block.startswith("id: ")
        )
    ]
    assert len(events) == 30
    cut = 15
    assert any(is_marathon(e) for _, e in events[cut:]), events  # Marathon's place moves too
    second = httpx.get(
        dev.url + path,
        params={"include": "scheduler", "cursor": events[cut - 1][0]},
        headers={**dev.admin, "Accept": "application/json"},
    )
    assert second.status_code == 200, second.text
    resumed = [orjson.loads(line) for line in second.content.splitlines() if line.strip()]

    def by_source(found: list[dict[str, object]]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for e in found:
            key = "marathon" if is_marathon(e) else str(e["fields"]["AGENT_ID"])  # type: ignore[index]
            out.setdefault(key, []).append(str(e["cursor"]))
        return out

    before, after = by_source([e for _, e in events[cut:]]), by_source(resumed)
    for source, cursors in before.items():
        assert after[source][: len(cursors)] == cursors, source  # nothing lost, nothing twice


def test_a_merged_follow_with_scheduler_brings_marathons_new_lines(dev: Dev) -> None:
    with running(
        argv("app", "/prod", "--with-scheduler", "-f", "-n", "0", "-o", "json"),
        command_env(dev, dev.token),
    ) as r:
        wait_for(
            f"a new Marathon line (stderr: {r.err})",
            lambda: True if any(is_marathon(orjson.loads(line)) for line in list(r.out)) else None,
            timeout=LINES_TIMEOUT,
        )
        assert r.interrupt() == 0
    followed = [orjson.loads(line) for line in r.out]
    for e in filter(is_marathon, followed):
        assert names(e["fields"]["MESSAGE"], "/prod/web"), e


# --- Follow ------------------------------------------------------------------------------------


@dataclass
class Running:
    """A `logway logs` process whose stdout and stderr lines are collected as they come."""

    proc: subprocess.Popen[bytes]
    out: list[str] = field(default_factory=list)
    err: list[str] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)

    @classmethod
    def start(cls, args: list[str], env: Mapping[str, str]) -> Running:
        proc = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(env), cwd=ROOT
        )
        running = cls(proc)
        for pipe, sink in ((proc.stdout, running.out), (proc.stderr, running.err)):
            t = threading.Thread(target=_collect, args=(pipe, sink), daemon=True)
            t.start()
            running._threads.append(t)
        return running

    def wait_out(self, count: int, what: str = "") -> None:
        wait_for(
            f"{count} lines of output {what}(stderr: {self.err})",
            lambda: True if len(self.out) >= count else None,
            timeout=LINES_TIMEOUT,
        )

    def wait_err(self, text: str, count: int = 1) -> None:
        wait_for(
            f"{count} times {text!r} on stderr (stderr: {self.err})",
            lambda: True if sum(text in line for line in self.err) >= count else None,
            timeout=LINES_TIMEOUT,
        )

    def interrupt(self) -> int:
        """Ctrl-C; the exit status."""
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(COMMAND_TIMEOUT)
        for t in self._threads:
            t.join(10)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _collect(pipe: object, sink: list[str]) -> None:
    assert hasattr(pipe, "readline")
    for line in iter(pipe.readline, b""):
        sink.append(line.decode(errors="replace").rstrip("\n"))
    pipe.close()  # type: ignore[attr-defined]


@contextlib.contextmanager
def running(args: list[str], env: Mapping[str, str]) -> Iterator[Running]:
    proc = Running.start(args, env)
    try:
        yield proc
    finally:
        proc.kill()


def test_follow_then_ctrl_c(dev: Dev) -> None:
    task = dev.dev_task
    wait_lines(dev, task, "stdout", 3)
    with running(argv("task", task.task.id, "-f", "-n", "2"), command_env(dev, dev.token)) as r:
        r.wait_out(5, "(2 old, 3 new) ")
        assert r.interrupt() == 0
        assert r.err == []  # quiet: no traceback, no note
    assert_run_of(r.out, messages(dev, task))


def test_follow_new_lines_only(dev: Dev) -> None:
    env = command_env(dev, dev.token)
    before = entries(dev, "/system/v1/logs/v1/range/", skip_prev=1)
    with running(argv("master", "-f", "-n", "0", "-o", "json"), env) as r:
        r.wait_out(2)
        assert r.interrupt() == 0
    followed = [orjson.loads(line) for line in r.out]
    after = entries(dev, "/system/v1/logs/v1/range/", skip_prev=500)
    cursors = [e["cursor"] for e in after]
    assert_run_of([e["cursor"] for e in followed], cursors)
    # Only what came after the newest entry when it started.
    assert cursors.index(followed[0]["cursor"]) > cursors.index(before[-1]["cursor"])


def test_a_reader_that_goes_away_ends_a_follow_quietly(dev: Dev) -> None:
    """`logway logs … -f | head -1`: the next write finds the pipe closed."""
    proc = subprocess.Popen(
        argv("master", "-f", "-n", "1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=command_env(dev, dev.token),
        cwd=ROOT,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    try:
        assert proc.stdout.readline()
        proc.stdout.close()
        assert proc.wait(COMMAND_TIMEOUT) == 0  # the master's service writes every second
        assert proc.stderr.read() == b""
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()


class Relay:
    """A TCP relay on MASTER to the gateway that the test can cut: close every connection
    (the client sees its stream end mid-response), and stop or start listening (refused)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.port = free_port(MASTER)
        self.target = target
        self.accepted = 0
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{MASTER}:{self.port}"

    def listen(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((MASTER, self.port))
        server.listen()
        server.settimeout(0.1)
        self._stop = stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, args=(server, stop), daemon=True)
        self._thread.start()

    def refuse(self) -> None:
        assert self._stop is not None
        assert self._thread is not None
        self._stop.set()
        self._thread.join()

    def cut(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)  # wakes the relay threads too

    def close(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self.refuse()
        self.cut()

    def _accept(self, server: socket.socket, stop: threading.Event) -> None:
        with server:
            while not stop.is_set():
                try:
                    client, _ = server.accept()
                except TimeoutError:
                    continue
                client.settimeout(None)
                upstream = socket.create_connection(self.target)
                with self._lock:
                    self._conns += [client, upstream]
                    self.accepted += 1
                for src, dst in ((client, upstream), (upstream, client)):
                    threading.Thread(target=_pump, args=(src, dst), daemon=True).start()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
        src.close()


def follow_through_cuts(dev: Dev, *args: str) -> Running:
    """`logway logs … -f` through a relay cut twice: its connections closed while it still
    listens, then closed and refused until a reconnect attempt was refused. The finished
    process, interrupted once it printed three more lines after each cut."""
    relay = Relay((MASTER, dev.cluster.config.gateway_port))
    relay.listen()
    try:
        with running(argv(*args, "-f", "--url", relay.url), command_env(dev, dev.token)) as r:
            r.wait_out(5)
            relay.cut()  # the stream ends mid-response; reconnecting works at once
            r.wait_err("reconnected")
            r.wait_out(len(r.out) + 3, "after the first cut ")
            relay.refuse()  # now nobody listens for a while
            relay.cut()
            r.wait_err("cannot connect")
            relay.listen()
            r.wait_err("reconnected", 2)
            r.wait_out(len(r.out) + 3, "after the second cut ")
            assert r.interrupt() == 0
    finally:
        relay.close()
    assert relay.accepted >= 3
    notes = [line for line in r.err if "reconnecting in" in line]
    assert len(notes) >= 2, r.err
    assert all(line.startswith("logway logs: ") for line in r.err), r.err
    return r


def test_a_task_follow_survives_cuts_without_losing_or_repeating_a_line(dev: Dev) -> None:
    task = dev.dev_task
    wait_lines(dev, task, "stdout", 3)
    r = follow_through_cuts(dev, "task", task.task.id, "-n", "3")
    assert_run_of(r.out, messages(dev, task))


def test_a_merged_follow_survives_cuts_without_losing_or_repeating_a_line(dev: Dev) -> None:
    """A whole app on every agent: the relay cuts a stream resumed by a composite cursor."""
    r = follow_through_cuts(dev, "app", PROD_WEB, "-n", "3", "-o", "json")
    followed = [orjson.loads(line) for line in r.out]
    cursors = [e["cursor"] for e in followed]
    assert len(set(cursors)) == len(cursors)  # nothing twice
    merged = entries(dev, f"/system/v1/logs/v1/app{PROD_WEB}/range/", skip_prev=2000)
    agents = {e["fields"]["AGENT_ID"] for e in followed}
    assert agents <= {t.agent_id for t in dev.cluster.tasks if t.app_id == PROD_WEB}
    for agent in agents:  # nothing missing in between, agent by agent
        assert_run_of(
            [e["cursor"] for e in followed if e["fields"]["AGENT_ID"] == agent],
            [e["cursor"] for e in merged if e["fields"]["AGENT_ID"] == agent],  # type: ignore[index]
        )


# --- Who may read, and errors ----------------------------------------------------------------


@pytest.fixture(scope="module")
def users(dev: Dev) -> dict[str, str]:
    """Tokens: `nobody` has no grant at all, `devs` may read the /dev tasks' logs only."""
    nobody = add_user(dev.url, dev.admin, "logs-nobody", "nobody password")
    devs = add_user(dev.url, dev.admin, "logs-devs", "devs password")
    grant(dev.url, dev.admin, "dcos:mesos:agent:task:app_id:/dev", "logs-devs")
    return {
        "nobody": nobody["Authorization"].removeprefix("token="),
        "devs": devs["Authorization"].removeprefix("token="),
    }


def test_denied_is_exit_3(dev: Dev, users: dict[str, str]) -> None:
    prod, own = dev.task(PROD_WEB), dev.dev_task
    for args in (("master",), ("leader",), ("task", own.task.id), ("task", "no-such-task")):
        done = logs(dev, *args, token=users["nobody"])
        assert done.returncode == 3, (args, done.stderr)
        assert "denied (403)" in done.stderr
        assert "logs-nobody" in done.stderr  # the gateway's own words
    assert ok(logs(dev, "task", own.task.id, "-n", "1", token=users["devs"]))
    for args in (("task", prod.task.id), ("agent", prod.agent_id), ("master",)):
        done = logs(dev, *args, token=users["devs"])
        assert done.returncode == 3, (args, done.stderr)
    # Merged reads: the tasks the caller may read, 403 when there are none.
    devs_role = ok(logs(dev, "role", own.task.role, "-n", "5", "-o", "json", token=users["devs"]))
    dev_ids = {t.task.id for t in dev.cluster.tasks if t.app_id.startswith("/dev/")}
    assert {orjson.loads(line)["fields"]["TASK_ID"] for line in devs_role} <= dev_ids
    for args in (("role", prod.task.role), ("app", PROD_WEB)):
        done = logs(dev, *args, token=users["devs"])
        assert done.returncode == 3, (args, done.stderr)
        assert "denied (403)" in done.stderr
    # Marathon's lines need what the Marathon leader's journal needs.
    done = logs(dev, "role", own.task.role, "--with-scheduler", token=users["devs"])
    assert done.returncode == 3, done.stderr
    assert "Marathon leader's journal" in done.stderr
    assert "dcos:adminrouter:ops:system-logs" in done.stderr
    anonymous = logs(dev, "master", token=None)
    assert anonymous.returncode == 3
    assert "not authenticated (401)" in anonymous.stderr
    assert "LOGWAY_TOKEN" in anonymous.stderr


def test_denied_follow_is_exit_3(dev: Dev, users: dict[str, str]) -> None:
    done = logs(dev, "task", dev.task(PROD_WEB).task.id, "-f", token=users["devs"])
    assert done.returncode == 3, done.stderr


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("bogus",), "invalid choice"),
        (("agent",), "AGENT_ID"),
        (("master", "--since", "soon"), "--since"),
        (("master", "--filter", "STREAM"), "--filter"),
        (("master", "-n", "ten"), "--lines"),
        (("task", "x", "--unit", "y"), "--unit"),
        (("master", "--with-scheduler"), "--with-scheduler"),
        (("task", "x", "stdlog"), "invalid choice"),
        (("master", "-o", "yaml"), "invalid choice"),
    ],
)
def test_bad_usage_is_exit_2(dev: Dev, args: tuple[str, ...], says: str) -> None:
    done = logs(dev, *args)
    assert done.returncode == 2, done.stderr
    assert says in done.stderr


def test_unknown_or_ambiguous_task_is_exit_1(dev: Dev) -> None:
    done = logs(dev, "task", "no-such-task")
    assert done.returncode == 1
    assert "not found (404): task `no-such-task` not found" in done.stderr
    agent = logs(dev, "agent", "no-such-agent")
    assert agent.returncode == 1
    assert "no-such-agent" in agent.stderr
    # "dev" is in the id of every /dev task: several match, and each is named.
    candidates = [t.task.id for t in dev.cluster.tasks if "dev" in t.task.id]
    assert len(candidates) >= 2
    ambiguous = logs(dev, "task", "dev")
    assert ambiguous.returncode == 1
    assert "(409)" in ambiguous.stderr
    for task_id in candidates:
        assert f"\n  {task_id}" in ambiguous.stderr


def test_unreachable_is_exit_1(dev: Dev) -> None:
    done = logs(dev, "master", "--url", f"http://{MASTER}:{free_port(MASTER)}")
    assert done.returncode == 1
    assert "cannot reach the gateway" in done.stderr


def test_stored_login(dev: Dev, tmp_path: Path) -> None:
    home = tmp_path / "home"
    Credentials(url=dev.url, uid="admin", token=dev.token).save(
        home / "logway" / "credentials.json"
    )
    env = command_env(dev, None, XDG_CONFIG_HOME=str(home))
    del env["LOGWAY_URL"]
    done = subprocess.run(
        argv("master", "-n", "2"), capture_output=True, text=True, env=env, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 2
    # The stored token is for the URL it was issued by; another address for the same
    # gateway gets none.
    relay = Relay((MASTER, dev.cluster.config.gateway_port))
    relay.listen()
    try:
        other = subprocess.run(
            argv("master", "--url", relay.url),
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            cwd=ROOT,
        )
    finally:
        relay.close()
    assert other.returncode == 3, other.stderr
    assert "401" in other.stderr


# --- A terminal --------------------------------------------------------------------------------


def on_terminal(args: list[str], env: Mapping[str, str]) -> tuple[int, bytes]:
    """Run with stdout on a pseudo-terminal; its exit status and what it wrote there."""
    primary, secondary = pty.openpty()
    proc = subprocess.Popen(
        args, stdin=subprocess.DEVNULL, stdout=secondary, stderr=subprocess.PIPE, env=dict(env)
    )
    os.close(secondary)
    out = bytearray()
    deadline = time.monotonic() + COMMAND_TIMEOUT
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([primary], [], [], 0.5)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(primary, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            out += data
        code = proc.wait(COMMAND_TIMEOUT)
    finally:
        os.close(primary)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()
    return code, bytes(out)


def test_colours_and_header_on_a_terminal_only(dev: Dev) -> None:
    task = dev.dev_task
    wait_lines(dev, task, "stderr", 2)
    env = command_env(dev, dev.token, TERM="xterm")
    header = f"==> task {task.task.id} stderr on agent {task.agent_id} <==".encode()
    code, tty = on_terminal(argv("task", task.task.id, "stderr", "-n", "2"), env)
    assert code == 0
    lines = tty.splitlines()
    assert lines[0] == b"\x1b[1m" + header + b"\x1b[0m"
    assert len(lines) == 3
    assert all(line.startswith(b"\x1b[31m") for line in lines[1:])  # stderr in red
    wait_entries(dev, "/system/v1/logs/v1/range/", 2, skip_prev=2)
    code, master = on_terminal(argv("master", "-n", "2"), env)
    assert code == 0
    assert master.startswith(b"\x1b[1m==> master <==\x1b[0m")
    assert master.count(b"\x1b[2m") == 2  # dim timestamps

    piped = logs(dev, "task", task.task.id, "stderr", "-n", "2")
    assert "\x1b" not in piped.stdout
    assert "==>" not in piped.stdout
    assert len(piped.stdout.splitlines()) == 2

    no_colour = command_env(dev, dev.token, TERM="xterm", NO_COLOR="1")
    code, plain = on_terminal(argv("task", task.task.id, "stderr", "-n", "2"), no_colour)
    assert code == 0
    assert b"\x1b" not in plain
    assert plain.splitlines()[0] == header
    # A merged read: each line starts with its task's name and container in the task's colour.
    prod = [t for t in dev.cluster.tasks if t.app_id == PROD_WEB]
    code, merged = on_terminal(argv("app", PROD_WEB, "-n", "12"), env)
    assert code == 0
    body = merged.splitlines()[1:]
    assert len(body) == 12
    tags = {
        f"{t.task.name}:{t.container_id.rsplit('.', 1)[-1][:6]}".encode(): i
        for i, t in enumerate(prod)
    }
    prefixes = {line.split(b"\x1b[0m", 1)[0] for line in body}
    assert {p[5:] for p in prefixes} <= set(tags), prefixes  # after the 5-byte colour code
    assert len({p[:5] for p in prefixes}) == len(prefixes)  # one colour per task
    code, as_json = on_terminal(argv("master", "-n", "2", "-o", "json"), env)
    assert code == 0
    assert b"\x1b" not in as_json
    assert all(orjson.loads(line) for line in as_json.splitlines())


def test_grep_with_context_and_count(dev: Dev) -> None:
    import re2  # type: ignore[import-untyped]

    task = dev.dev_task
    full = wait_lines(dev, task, "stdout", 5)
    target = full[2]
    pattern = f"^{re2.escape(target)}$"
    assert ok(logs(dev, "task", task.task.id, "--grep", pattern)) == [target]
    around = ok(logs(dev, "task", task.task.id, "--grep", pattern, "-C", "1"))
    assert around == full[1:4]
    agent = task.agent_id or ""
    assert ok(logs(dev, "agent", agent, "--grep", pattern, "--count")) == ["1"]
    # a task's count: its file's lines (matches), by id or name, -n counting back
    assert ok(logs(dev, "task", task.task.id, "--grep", pattern, "--count")) == ["1"]
    assert ok(logs(dev, "task", task.task.id, "-n", "3", "--count")) == ["3"]
    stdout = int(ok(logs(dev, "task", task.task.id, "-n", "all", "--count"))[0])
    assert stdout >= len(full)
    stderr = ok(logs(dev, "task", task.task.id, "stderr", "--grep", pattern, "--count"))
    assert stderr == ["0"]  # the same line is in stdout only
    done = logs(dev, "agent", agent, "--grep", "(unclosed")
    assert done.returncode == 2
    assert "grep" in done.stderr
