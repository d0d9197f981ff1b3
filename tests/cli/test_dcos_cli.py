"""The real DC/OS CLI 0.6.1 against a whole dev cluster (issue 5 §2; reference §7).

One cluster for the module (master and two agents on 127.0.0.71-73, each with its journald
namespace and node reader, the Mesos simulator, the gateway with its IAM, the sample tasks
under `logway ship`). Every command is a real `dcos` process with its own 0600 config file.
What it prints is compared with what the node's journal holds, read with journalctl (not
through the gateway): the lines must be a run of the journal's entries, rendered as the CLI
shows them, and every entry after the requested ones must be younger than the command (so
they were the last N when it asked).

What the CLI asks for, since the gateway advertises LOGGING_V2 (dcoscli/node/main.py,
dcoscli/task/main.py, dcoscli/log.py):
- `dcos node log --leader|--mesos-id=ID [--component=U] [--filter=K:V]… [--lines=N]`:
  `/system/v1/{leader/mesos|agent/ID}/logs/v2/component[/U.service]?skip=-N&filter=K:V`,
  `Accept: text/plain` (the reader's `YYYY-MM-DD HH:MM:SS: MESSAGE` lines, printed as is);
  with `--follow` the same URL as SSE, each event printed as `<%Y-%m-%d %H:%m:%S>: MESSAGE`
  from its realtime stamp (%m for minutes: the CLI's own bug).
- `dcos task log [--follow] [--lines=N] TASK [stdout|stderr]`: `/mesos/master/state.json`
  (TASK matches a task id by substring), then `/system/v1/logs/v2/task/<id>/file/<file>
  ?cursor=END&skip=-N`: the raw lines; followed as SSE, each event's MESSAGE.
"""

from __future__ import annotations

import datetime
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.devcluster.cluster import (
    DEV_BATCH,
    PROD_WEB,
    SUPERUSER,
    DevCluster,
    DevClusterConfig,
    Node,
    SampleTask,
    build,
)
from app.devcluster.supervisor import Supervisor
from tests.conftest import free_port, journald_available, new_namespace_name
from tests.gateway.support import add_user, grant, login, port_free_on
from tests.support.wait import wait_for

pytestmark = pytest.mark.skipif(not journald_available(), reason="needs root and journald")

MASTER, AGENTS = "127.0.0.71", ("127.0.0.72", "127.0.0.73")
CLI = Path("/tmp/dcos-cli/bin/dcos")  # where ../shared/tools/install-dcos-cli.sh puts it
PASSWORD = "admin password for the dcos CLI tests"
COMMAND_TIMEOUT = 60.0  # one CLI run, on a busy 2-core machine
WRITE_TIMEOUT = 60.0  # until the journals hold as many lines as a command asks for
FOLLOWED = 3  # lines a follow must print beyond the ones it asked for
# What the CLI prints for any 403 (dcos/errors.py DCOSAuthorizationException), and for a
# task the master's state does not show the caller (dcoscli/task/main.py `_log`).
NOT_AUTHORIZED = "You are not authorized to perform this operation."
NO_MATCHING_TASKS = "No matching tasks. Exiting."
NO_LOGS = "No logs found"  # a range that is empty (204; dcoscli/log.py print_logs_range)
DEV_GRANT = "dcos:mesos:agent:task:app_id:/dev"
MARATHON_UNIT = "dcos-marathon.service"  # the CLI asks the Marathon leader for it
# Users of this module's own (the dev cluster may bootstrap others).
NO_GRANTS, DEV_ONLY = "cli-nogrants", "cli-devonly"


@dataclass(frozen=True)
class Env:
    cluster: DevCluster
    configs: Mapping[str, Path]  # uid -> its dcos.toml
    home: Path

    @property
    def web(self) -> SampleTask:
        return self.cluster.task_for(PROD_WEB)

    @property
    def pod_tasks(self) -> list[SampleTask]:
        return [task for task in self.cluster.tasks if task.app_id == DEV_BATCH]


def write_config(directory: Path, url: str, header: Mapping[str, str]) -> Path:
    directory.mkdir()
    config = directory / "dcos.toml"
    token = header["Authorization"].removeprefix("token=")
    config.write_text(
        f'[core]\ndcos_url = "{url}"\ndcos_acs_token = "{token}"\nreporting = false\n'
    )
    config.chmod(0o600)  # the CLI refuses a config others may read
    return config


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    if not CLI.exists():
        pytest.skip(
            f"the dcos CLI 0.6.1 is not installed at {CLI} (shared/tools/install-dcos-cli.sh)"
        )
    tmp = tmp_path_factory.mktemp("dcos-cli")
    config = DevClusterConfig(
        master_ip=MASTER,
        agent_ips=AGENTS,
        mesos_port=free_port(MASTER),
        reader_port=port_free_on((MASTER, *AGENTS)),  # every reader listens on one port
        gateway_port=free_port(MASTER),
        namespace=new_namespace_name(),
        data_dir=tmp / "data",
    )
    cluster = build(config, python=sys.executable)
    process_env = {**os.environ, "LOGWAY_IAM_SCRYPT_LOG2_N": "12"}  # fast hashing, tests only
    with Supervisor(cluster, password=PASSWORD, env=process_env):
        base = cluster.gateway_url
        admin = login(base, SUPERUSER, PASSWORD)
        headers = {
            SUPERUSER: admin,
            NO_GRANTS: add_user(base, admin, NO_GRANTS, f"{NO_GRANTS} password"),
            DEV_ONLY: add_user(base, admin, DEV_ONLY, f"{DEV_ONLY} password"),
        }
        grant(base, admin, DEV_GRANT, DEV_ONLY)
        configs = {uid: write_config(tmp / uid, base, h) for uid, h in headers.items()}
        yield Env(cluster, configs, tmp)


# Running the CLI ---------------------------------------------------------------------------


def cli_env(env: Env, uid: str) -> dict[str, str]:
    passed = {k: v for k, v in os.environ.items() if k in ("PATH", "TZ")}
    return passed | {
        "HOME": str(env.home),
        "DCOS_DIR": str(env.home / "dcos"),  # no cluster directories: DCOS_CONFIG is used
        "DCOS_CONFIG": str(env.configs[uid]),
    }


@dataclass(frozen=True)
class Run:
    started: float  # time.time() just before the CLI started
    returncode: int
    lines: list[str]  # stdout
    stderr: str


def dcos(env: Env, *args: str, uid: str = SUPERUSER) -> Run:
    started = time.time()
    done = subprocess.run(
        [str(CLI), *args],
        env=cli_env(env, uid),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
    )
    return Run(started, done.returncode, done.stdout.splitlines(), done.stderr)


def dcos_ok(env: Env, *args: str) -> Run:
    run = dcos(env, *args)
    assert run.returncode == 0, (args, run.stderr)
    return run


def follow(env: Env, *args: str, count: int) -> Run:
    """`dcos … --follow` until it printed `count` lines (or COMMAND_TIMEOUT), then SIGTERM."""
    started = time.time()
    proc = subprocess.Popen(
        [str(CLI), *args],
        env=cli_env(env, SUPERUSER),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    printed: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            printed.put(line.rstrip("\n"))
        printed.put(None)  # the CLI exited

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    lines: list[str] = []
    deadline = time.monotonic() + COMMAND_TIMEOUT
    try:
        while len(lines) < count:
            line = printed.get(timeout=max(deadline - time.monotonic(), 0.01))
            if line is None:
                break
            lines.append(line)
    except queue.Empty:
        pass
    finally:
        still_running = proc.poll() is None
        if still_running:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
        reader.join(10)
        stderr = proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
    assert still_running, f"`dcos {' '.join(args)}` ended by itself: {lines} {stderr}"
    return Run(started, 0, lines, stderr)


# The journals, as journalctl reads them ------------------------------------------------------

Fields = Mapping[str, str]
Render = Callable[[int, str], str]


def journal(node: Node, select: Callable[[Fields], bool]) -> list[Fields]:
    """The entries of `node`'s journal that have a MESSAGE and that `select` keeps, in order."""
    out = subprocess.run(
        ["journalctl", f"--namespace={node.namespace}", "--output=json", "--no-pager"],
        capture_output=True,
        text=True,
        check=True,
        timeout=COMMAND_TIMEOUT,
    ).stdout
    entries = [json.loads(line) for line in out.splitlines()]
    return [e for e in entries if isinstance(e.get("MESSAGE"), str) and select(e)]


def everything(fields: Fields) -> bool:
    return True


def where(**wanted: str) -> Callable[[Fields], bool]:
    return lambda fields: all(fields.get(k) == v for k, v in wanted.items())


def unit(name: str) -> Callable[[Fields], bool]:
    """`/v2/component/<unit>`: UNIT or _SYSTEMD_UNIT (reference §2.2)."""
    return lambda fields: name in (fields.get("UNIT"), fields.get("_SYSTEMD_UNIT"))


def task_file(task: SampleTask, stream: str) -> Callable[[Fields], bool]:
    return where(TASK_ID=task.task.id, STREAM=stream)


def wait_for_entries(node: Node, select: Callable[[Fields], bool], count: int) -> None:
    wait_for(
        f"{count} entries in {node.namespace}",
        lambda: True if len(journal(node, select)) >= count else None,
        timeout=WRITE_TIMEOUT,
        step=0.5,
    )


def text_line(realtime: int, message: str) -> str:
    """A range in text: the node reader's `<local time>: MESSAGE`."""
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(realtime // 1_000_000))
    return f"{stamp}: {message}"


def followed_line(realtime: int, message: str) -> str:
    """An SSE event as `dcos node log --follow` prints it (dcoscli/log.py follow_logs)."""
    stamp = datetime.datetime.fromtimestamp(int(realtime / 1000000)).strftime("%Y-%m-%d %H:%m:%S")
    return f"{stamp}: {message}"


def raw_line(realtime: int, message: str) -> str:
    """A task's file: its lines as written."""
    return message


def assert_tail(
    run: Run,
    node: Node,
    select: Callable[[Fields], bool],
    render: Render,
    *,
    lines: int,
) -> list[Fields]:
    """`run` printed a run of the selected entries, the first `lines` of which were the last
    `lines` when it started: every selected entry after them is younger than the command.
    Returns the entries it printed."""
    assert run.lines, run.stderr
    entries = journal(node, select)
    rendered = [render(int(e["__REALTIME_TIMESTAMP"]), e["MESSAGE"]) for e in entries]
    count = len(run.lines)
    starts = [i for i in range(len(rendered)) if rendered[i : i + count] == run.lines]
    assert starts, f"not a run of the journal's entries:\n{run.lines}\njournal:\n{rendered}"
    after = entries[starts[0] + lines :]
    started_usec = int(run.started * 1_000_000)
    older = [e["MESSAGE"] for e in after if int(e["__REALTIME_TIMESTAMP"]) < started_usec]
    assert older == [], f"left out, though written before the command started: {older}"
    return entries[starts[0] : starts[0] + count]


# dcos node log -----------------------------------------------------------------------------


def test_node_log_leader_prints_the_last_ten_lines_of_the_masters_journal(env: Env) -> None:
    master = env.cluster.master
    wait_for_entries(master, everything, 11)
    run = dcos_ok(env, "node", "log", "--leader")
    assert len(run.lines) == 10, run.lines  # the CLI's default
    assert_tail(run, master, everything, text_line, lines=10)


@pytest.mark.parametrize("node", ["leader", "S0", "S1"])
def test_node_log_lines_prints_exactly_n(env: Env, node: str) -> None:
    if node == "leader":
        target, where_ = env.cluster.master, "--leader"
    else:
        target = next(a for a in env.cluster.agents if a.name == node)
        where_ = f"--mesos-id={target.agent_id}"
    wait_for_entries(target, everything, 4)
    run = dcos_ok(env, "node", "log", where_, "--lines=3")
    assert len(run.lines) == 3, run.lines
    assert_tail(run, target, everything, text_line, lines=3)


def test_node_log_mesos_id_reads_that_agents_journal(env: Env) -> None:
    # Both agents' services write the same lines at the same seconds; their tasks tell the
    # journals apart.
    for agent in env.cluster.agents:
        own = {t.task.id for t in env.cluster.tasks if t.agent == agent}
        assert own
        wait_for_entries(agent, everything, 8)
        run = dcos_ok(env, "node", "log", f"--mesos-id={agent.agent_id}", "--lines=8")
        assert len(run.lines) == 8, run.lines
        shown = assert_tail(run, agent, everything, text_line, lines=8)
        assert {e.get("TASK_ID") for e in shown} & own, run.lines


@pytest.mark.parametrize("suffix", ["", ".service"])
def test_node_log_component_reads_one_unit(env: Env, suffix: str) -> None:
    # Without a suffix the CLI appends `.service`; `--leader` asks the leader's reader.
    master = env.cluster.master
    name = master.service.unit
    wait_for_entries(master, unit(name), 3)
    component = f"--component={name.removesuffix('.service')}{suffix}"
    run = dcos_ok(env, "node", "log", "--leader", component, "--lines=3")
    assert len(run.lines) == 3, run.lines
    assert_tail(run, master, unit(name), text_line, lines=3)


def test_node_log_component_on_an_agent(env: Env) -> None:
    agent = env.cluster.agents[0]
    name = agent.service.unit
    wait_for_entries(agent, unit(name), 11)
    run = dcos_ok(env, "node", "log", f"--mesos-id={agent.agent_id}", f"--component={name}")
    assert len(run.lines) == 10, run.lines
    assert_tail(run, agent, unit(name), text_line, lines=10)
    # The master's unit does not run there: nothing, as the CLI says it.
    other = env.cluster.master.service.unit
    assert not journal(agent, unit(other))
    none = dcos(env, "node", "log", f"--mesos-id={agent.agent_id}", f"--component={other}")
    assert none.returncode == 1
    assert none.lines == []
    assert NO_LOGS in none.stderr.splitlines()


def test_node_log_filter(env: Env) -> None:
    web = env.web
    agent = web.agent
    stderr = where(STREAM="STDERR")
    wait_for_entries(agent, stderr, 3)
    args = ("--filter=STREAM:STDERR", "--lines=2")
    run = dcos_ok(env, "node", "log", f"--mesos-id={agent.agent_id}", *args)
    assert len(run.lines) == 2, run.lines
    assert_tail(run, agent, stderr, text_line, lines=2)
    # Filters on different fields are ANDed.
    both = where(STREAM="STDOUT", TASK_ID=web.task.id)
    wait_for_entries(agent, both, 3)
    anded = ("--filter=STREAM:STDOUT", f"--filter=TASK_ID:{web.task.id}", "--lines=3")
    run = dcos_ok(env, "node", "log", f"--mesos-id={agent.agent_id}", *anded)
    assert len(run.lines) == 3, run.lines
    assert_tail(run, agent, both, text_line, lines=3)
    nothing = dcos(env, "node", "log", f"--mesos-id={agent.agent_id}", "--filter=STREAM:NONE")
    assert (nothing.returncode, nothing.lines) == (1, [])
    assert NO_LOGS in nothing.stderr.splitlines()


def test_node_log_component_of_the_marathon_leader(env: Env) -> None:
    # The CLI asks `/system/v1/leader/marathon/…` for Marathon's unit; the dev cluster's
    # Marathon registered from the master, so its journal answers (issue 18).
    master = env.cluster.master
    wait_for_entries(master, unit(MARATHON_UNIT), 4)
    run = dcos_ok(env, "node", "log", "--leader", "--component=dcos-marathon", "--lines=3")
    assert len(run.lines) == 3, run.lines
    shown = assert_tail(run, master, unit(MARATHON_UNIT), text_line, lines=3)
    assert all(e["MESSAGE"].startswith("marathon: ") for e in shown), run.lines


def test_node_log_component_of_the_marathon_leader_follows(env: Env) -> None:
    master = env.cluster.master
    wait_for_entries(master, unit(MARATHON_UNIT), 2)
    args = ("node", "log", "--leader", "--component=dcos-marathon", "--follow", "--lines=1")
    run = follow(env, *args, count=1 + FOLLOWED)
    assert len(run.lines) == 1 + FOLLOWED, (run.lines, run.stderr)
    assert_tail(run, master, unit(MARATHON_UNIT), followed_line, lines=1)


@pytest.mark.parametrize("node", ["leader", "agent"])
def test_node_log_follow_prints_new_lines(env: Env, node: str) -> None:
    if node == "leader":
        target, where_ = env.cluster.master, "--leader"
    else:
        target = env.cluster.agents[-1]
        where_ = f"--mesos-id={target.agent_id}"
    wait_for_entries(target, everything, 3)
    run = follow(env, "node", "log", where_, "--follow", "--lines=2", count=2 + FOLLOWED)
    assert len(run.lines) == 2 + FOLLOWED, (run.lines, run.stderr)
    assert_tail(run, target, everything, followed_line, lines=2)


# dcos task log -----------------------------------------------------------------------------


def tasks(env: Env) -> list[SampleTask]:
    """An app task and every pod task."""
    return [env.web, *env.pod_tasks]


def test_the_cluster_has_an_app_task_and_pod_tasks(env: Env) -> None:
    assert env.web.task.executor_id == ""  # command executor
    assert env.pod_tasks
    for task in env.pod_tasks:
        assert task.task.executor_id  # the pod's executor, the task in a nested container
        assert len(task.task.containers) == 2


def test_task_log_prints_the_last_ten_stdout_lines(env: Env) -> None:
    for task in tasks(env):
        select = task_file(task, "STDOUT")
        wait_for_entries(task.agent, select, 11)
        run = dcos_ok(env, "task", "log", task.task.id)
        assert len(run.lines) == 10, (task.task.id, run.lines)
        assert_tail(run, task.agent, select, raw_line, lines=10)


def test_task_log_stderr(env: Env) -> None:
    for task in tasks(env):
        select = task_file(task, "STDERR")
        wait_for_entries(task.agent, select, 2)
        run = dcos_ok(env, "task", "log", "--lines=2", task.task.id, "stderr")
        assert len(run.lines) == 2, (task.task.id, run.lines)
        assert all(" warning " in line for line in run.lines), run.lines  # not stdout's
        assert_tail(run, task.agent, select, raw_line, lines=2)


def test_task_log_lines_prints_exactly_n(env: Env) -> None:
    for task in tasks(env):
        select = task_file(task, "STDOUT")
        wait_for_entries(task.agent, select, 4)
        run = dcos_ok(env, "task", "log", "--lines=3", task.task.id, "stdout")
        assert len(run.lines) == 3, (task.task.id, run.lines)
        assert_tail(run, task.agent, select, raw_line, lines=3)


def test_task_log_follow_prints_new_lines(env: Env) -> None:
    for task in (env.web, env.pod_tasks[0]):
        select = task_file(task, "STDOUT")
        wait_for_entries(task.agent, select, 2)
        run = follow(env, "task", "log", "--follow", "--lines=1", task.task.id, count=1 + FOLLOWED)
        assert len(run.lines) == 1 + FOLLOWED, (task.task.id, run.lines, run.stderr)
        assert_tail(run, task.agent, select, raw_line, lines=1)


# Permissions -------------------------------------------------------------------------------


def assert_not_authorized(run: Run) -> None:
    assert run.returncode == 1, (run.lines, run.stderr)
    assert run.lines == []
    assert NOT_AUTHORIZED in run.stderr.splitlines(), run.stderr


def test_without_system_logs_node_logs_are_the_clis_authorization_error(env: Env) -> None:
    agent = env.cluster.agents[0].agent_id
    for uid in (NO_GRANTS, DEV_ONLY):
        assert_not_authorized(dcos(env, "node", "log", "--leader", uid=uid))
        assert_not_authorized(dcos(env, "node", "log", f"--mesos-id={agent}", uid=uid))
        assert_not_authorized(dcos(env, "node", "log", "--leader", "--follow", uid=uid))
        for component in ("dcos-mesos-master", "dcos-marathon"):
            args = ("node", "log", "--leader", f"--component={component}")
            assert_not_authorized(dcos(env, *args, uid=uid))


def test_a_task_the_caller_may_not_read_is_not_found(env: Env) -> None:
    # The master's state the gateway serves shows a caller only the tasks it may read, so the
    # CLI never gets as far as asking for the logs: it says so in its own words.
    for uid, task in ((NO_GRANTS, env.web), (NO_GRANTS, env.pod_tasks[0]), (DEV_ONLY, env.web)):
        run = dcos(env, "task", "log", task.task.id, uid=uid)
        assert run.returncode == 1, (uid, task.task.id, run.lines)
        assert run.lines == []
        assert NO_MATCHING_TASKS in run.stderr.splitlines(), run.stderr


def test_a_dev_grant_reads_the_dev_pod_tasks(env: Env) -> None:
    for task in env.pod_tasks:
        select = task_file(task, "STDOUT")
        wait_for_entries(task.agent, select, 3)
        run = dcos(env, "task", "log", "--lines=2", task.task.id, uid=DEV_ONLY)
        assert run.returncode == 0, run.stderr
        assert len(run.lines) == 2, run.lines
        assert_tail(run, task.agent, select, raw_line, lines=2)
