"""`logway dev` (what `make run` starts), end to end: a real `logway dev --agents 3` process on
its own addresses and ports. Every command it prints is run as printed (bash, curl, `logway
logs`, the dcos CLI) under the identity whose section prints it, and must show what it
promises; `cluster.json` describes the running cluster and its tokens and key work; the `dev`
user reads the /dev/* tasks only. SIGINT then leaves no process, namespace, listener or
`cluster.json` behind, and a second run on the same data directory reuses the identities."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.authn.sign import TokenSigner
from app.devcluster.banner import DCOS_CLI
from app.devcluster.journald import JournaldNamespace
from tests.conftest import free_port, journald_available, new_namespace_name
from tests.gateway.support import port_free_on
from tests.support.readme import sh_lines

pytestmark = pytest.mark.skipif(not journald_available(), reason="needs root and journald")

MASTER = "127.0.0.31"
AGENTS = ("127.0.0.32", "127.0.0.33", "127.0.0.34")  # what `--agents 3` picks after MASTER
RERUN_AGENT = "127.0.0.35"  # the second run's single agent (`--agent-ip`)
READY_TIMEOUT = 180.0  # the whole cluster, on a busy 2-core machine
COMMAND_TIMEOUT = 30.0
DCOS = DCOS_CLI / "dcos"
ROOT = Path(__file__).resolve().parents[2]
FAST_HASHING = {"LOGWAY_IAM_SCRYPT_LOG2_N": "12"}  # for tests only
DENIED_BY_CLI = "You are not authorized to perform this operation."

# Each printed command, by the section (identity) that prints it. The first test checks that
# these are exactly the printed commands, so none goes untested.
SU, DEV, OPS = "superuser", "dev", "service"
SU_LEADER = (SU, r"^curl .*/system/v1/leader/mesos/logs/v1/range/\?skip_prev=5'$")
SU_AGENT = (SU, r"^curl .*/system/v1/agent/[^/]+-S0/logs/v1/range/\?skip_prev=10'$")
SU_WORKER_V1 = (SU, r"^curl .*Accept: application/json.*/executor/dev_worker\.")
SU_POD_V1 = (SU, r"^curl -s -H .*/executor/instance-dev_batch\.")
SU_FOLLOW = (SU, r"^curl -s -N -H 'Accept: text/event-stream'.*-S2/logs/v1/stream/\?skip_prev=3'$")
SU_V2 = (SU, r"^curl .*/system/v1/logs/v2/task/loader/file/stderr\?cursor=END&skip=-5'$")
SU_LOGS_LEADER = (SU, r"^logway logs leader -n 5$")
SU_LOGS_AGENT = (SU, r"^logway logs agent \S+-S0 --unit dcos-mesos-slave\.service -n 3$")
SU_LOGS_TASK = (SU, r"^logway logs task loader stderr -n 3$")
SU_LOGS_FOLLOW = (SU, r"^logway logs task worker\.dev -f$")
SU_LOGS_APP = (SU, r"^logway logs app /prod -f$")
SU_LOGS_SCHEDULER = (SU, r"^logway logs app /prod --with-scheduler -n 10$")
SU_APP_STREAM = (
    SU,
    r"^curl -s -N -H 'Accept: text/event-stream'.*/logs/v1/app/prod/stream/\?skip_prev=5'$",
)
SU_DCOS_LEADER = (SU, r"^DCOS_CONFIG=\S+/dcos-superuser\.toml dcos node log --leader --lines=3$")
SU_DCOS_TASK = (SU, r"^DCOS_CONFIG=\S+/dcos-superuser\.toml dcos task log --lines=3 loader$")
SU_DCOS_MARATHON = (
    SU,
    r"^DCOS_CONFIG=\S+/dcos-superuser\.toml dcos node log --leader --component=dcos-marathon "
    r"--lines=3$",
)
SU_LOGIN = (SU, r"^echo \S+ \| logway login --url \S+ --username admin --password-stdin$")
DEV_V2 = (DEV, r"^curl -s -H .*/logs/v2/task/worker\.dev/file/stdout\?cursor=END&skip=-3'$")
DEV_LOGS = (DEV, r"^logway logs task reporter -n 3$")
DEV_ROLE = (DEV, r"^logway logs role dev -n 5$")
DEV_DCOS_TASK = (DEV, r"^DCOS_CONFIG=\S+/dcos-dev\.toml dcos task log --lines=3 reporter$")
DEV_DENIED_TASK = (DEV, r"^curl -s -w .*/system/v1/logs/v2/task/prod_web\.[^/]+/file/stdout")
DEV_DENIED_SYSTEM = (DEV, r"^curl -s -w .*/system/v1/logs/v1/range/\?skip_prev=3'$")
DEV_DENIED_LOGS = (DEV, r"^logway logs task prod_web\.\S+ -n 3$")
DEV_DENIED_DCOS = (DEV, r"^DCOS_CONFIG=\S+/dcos-dev\.toml dcos node log --leader --lines=3$")
OPS_MASTER = (OPS, r"^curl .*/system/v1/logs/v1/range/\?skip_prev=5'$")
OPS_LOGS = (OPS, r"^logway logs master -n 3$")
OPS_LOGIN = (OPS, r"^logway login --url \S+ --service-account logway-ops --private-key \S+$")
FWD = "forward"
FWD_RUN = (FWD, r"^logway forward app /prod --to file://\S+/forward-prod\.ndjson --state \S+$")
FWD_WATCH = (FWD, r"^tail -n 3 \S+/forward-prod\.ndjson$")
FWD_STATUS = (FWD, r"^logway forward status --state \S+/forward-prod\.json$")
PRINTED = (
    SU_LEADER, SU_AGENT, SU_WORKER_V1, SU_POD_V1, SU_FOLLOW, SU_V2, SU_LOGS_LEADER,
    SU_LOGS_AGENT, SU_LOGS_TASK, SU_LOGS_FOLLOW, SU_LOGS_APP, SU_APP_STREAM, SU_DCOS_LEADER,
    SU_DCOS_TASK, SU_LOGIN, SU_LOGS_SCHEDULER, SU_DCOS_MARATHON, DEV_V2, DEV_LOGS, DEV_ROLE,
    DEV_DCOS_TASK, DEV_DENIED_TASK,
    DEV_DENIED_SYSTEM, DEV_DENIED_LOGS, DEV_DENIED_DCOS, OPS_MASTER, OPS_LOGS, OPS_LOGIN,
    FWD_RUN, FWD_WATCH, FWD_STATUS,
)  # fmt: skip
SECTIONS = {
    SU: "== as the superuser",
    DEV: "== as dev:",
    OPS: "== as the service account",
    FWD: "== forward:",  # run with the superuser's token line, as printed
}
TOKEN_LINE = r"^export LOGWAY_TOKEN="
SETUP_LINE = r"^export LOGWAY_URL="


@dataclass
class Dev:
    proc: subprocess.Popen[str]
    namespace: str
    data_dir: Path
    ports: dict[str, int]
    output: list[str] = field(default_factory=list)
    banner_done: threading.Event = field(default_factory=threading.Event)
    first_manifest: dict[str, Any] = field(default_factory=dict)
    first_key: bytes = b""

    @property
    def lines(self) -> list[str]:
        return [ln.strip() for ln in list(self.output)]

    def section(self, who: str) -> list[str]:
        """The lines under `who`'s heading, up to the next heading or the end."""
        lines = self.lines
        start = next(i for i, ln in enumerate(lines) if ln.startswith(SECTIONS[who]))
        found = []
        for line in lines[start + 1 :]:
            if line.startswith("== ") or line == "Ctrl-C stops everything.":
                break
            found.append(line)
        return found

    def commands(self, who: str) -> list[str]:
        return [ln for ln in self.section(who) if ln and not ln.startswith("#")]

    def command(self, printed: tuple[str, str]) -> str:
        """The one command line of the section matching the pattern."""
        who, pattern = printed
        found = [ln for ln in self.commands(who) if re.search(pattern, ln)]
        assert len(found) == 1, (printed, found)
        return found[0]

    @property
    def setup(self) -> str:
        found = [ln for ln in self.lines if re.search(SETUP_LINE, ln)]
        assert len(found) == 1, found
        return found[0]

    @property
    def mesos_url(self) -> str:
        return f"http://{MASTER}:{self.ports['mesos']}"

    @property
    def manifest_path(self) -> Path:
        return self.data_dir / "cluster.json"

    def manifest(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.manifest_path.read_text())
        return doc


def drain(dev: Dev) -> None:
    """Keep reading what `logway dev` and its children print, so no pipe ever fills."""
    assert dev.proc.stdout is not None
    for line in dev.proc.stdout:
        dev.output.append(line)
        if line.strip() == "Ctrl-C stops everything.":
            dev.banner_done.set()
    dev.banner_done.set()  # exited: let the waiter see it


def start_dev(data_dir: Path, namespace: str, ports: dict[str, int], *agents: str) -> Dev:
    """`logway dev` on MASTER with `agents` (`--agent-ip` each), or `--agents 3`."""
    argv = [
        sys.executable,
        "-m",
        "app.cli.main",
        "dev",
        f"--master-ip={MASTER}",
        *([f"--agent-ip={ip}" for ip in agents] if agents else ["--agents=3"]),
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
        env={**os.environ, **FAST_HASHING},
    )
    run = Dev(proc, namespace, data_dir, ports)
    threading.Thread(target=drain, args=(run,), daemon=True).start()
    return run


def wait_banner(run: Dev) -> None:
    assert run.banner_done.wait(READY_TIMEOUT), "no banner:\n" + "".join(run.output)
    assert run.proc.poll() is None, "logway dev exited:\n" + "".join(run.output)


def end(run: Dev) -> None:
    if run.proc.poll() is None:  # the tests normally stop it
        run.proc.send_signal(signal.SIGINT)
        try:
            run.proc.wait(60)
        except subprocess.TimeoutExpired:
            run.proc.kill()
            run.proc.wait()
    if run.proc.stdout:
        run.proc.stdout.close()


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    data_dir = tmp_path_factory.mktemp("dev") / "data"
    ports = {
        "mesos": free_port(MASTER),
        "gateway": free_port(MASTER),
        "reader": port_free_on((MASTER, *AGENTS, RERUN_AGENT)),  # every reader on one port
    }
    run = start_dev(data_dir, new_namespace_name(), ports)
    try:
        wait_banner(run)
        run.first_manifest = run.manifest()
        key = run.first_manifest["identities"]["service"]["private_key_path"]
        run.first_key = Path(key).read_bytes()
        yield run
    finally:
        end(run)


def sh(
    dev: Dev, who: str, *commands: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The setup line, `who`'s token line, then `commands`, as pasted into bash."""
    script = " && ".join([dev.setup, dev.command((who, TOKEN_LINE)), *commands])
    return subprocess.run(
        ["bash", "-c", script],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        env=env,
        cwd="/",  # the printed commands work from anywhere
    )


def out(dev: Dev, who: str, *commands: str, env: dict[str, str] | None = None) -> str:
    done = sh(dev, who, *commands, env=env)
    assert done.returncode == 0, (commands, done.stdout, done.stderr)
    return done.stdout


def run_until(dev: Dev, who: str, command: str, done: Callable[[str], bool]) -> str:
    """Run `command` until its output satisfies `done`: right after start-up the sample tasks
    and services may not have written as many lines as a command asks for."""
    deadline = time.monotonic() + COMMAND_TIMEOUT
    while True:
        got = out(dev, who, command)
        if done(got) or time.monotonic() > deadline:
            return got
        time.sleep(0.5)


def following(dev: Dev, who: str, command: str, seconds: int = 8) -> str:
    """What a command that never ends by itself prints in `seconds` (124: timeout stopped it)."""
    return out(dev, who, f"{{ timeout {seconds} {command} || [ $? = 124 ]; }}")


def text_lines(got: str) -> list[str]:
    """Messages of text-format lines (`YYYY-MM-DD HH:MM:SS: MESSAGE`)."""
    lines = got.splitlines()
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d: ", ln) for ln in lines), got
    return [ln.split(": ", 1)[1] for ln in lines]


def n_lines(n: int, *needles: str) -> Callable[[str], bool]:
    def check(got: str) -> bool:
        lines = got.splitlines()
        return len(lines) == n and all(any(x in ln for x in needles) for ln in lines)

    return check


MASTER_SERVICES = ("mesos-master: allocation cycle ", "marathon: ")


def master_lines(n: int) -> Callable[[str], bool]:
    """`n` lines of the master's services, the Mesos master's among them: every round
    writes one of its lines and two of Marathon's (Marathon leads from the master)."""
    written = n_lines(n, *MASTER_SERVICES)
    return lambda got: written(got) and MASTER_SERVICES[0] in got


def mesos_state(dev: Dev) -> dict[str, Any]:
    state: dict[str, Any] = httpx.get(f"{dev.mesos_url}/master/state", timeout=10).json()
    return state


def sim_tasks(dev: Dev) -> dict[str, dict[str, Any]]:
    return {t["id"]: t for f in mesos_state(dev)["frameworks"] for t in f["tasks"]}


def container_chain(task: dict[str, Any]) -> str:
    cid = task["statuses"][0]["container_status"]["container_id"]
    chain = []
    while cid:
        chain.append(cid["value"])
        cid = cid.get("parent")
    return ".".join(reversed(chain))


def gateway_get(dev: Dev, token: str, path: str) -> httpx.Response:
    url = dev.manifest()["gateway_url"] + path
    return httpx.get(url, headers={"Authorization": f"token={token}"}, timeout=30)


def manifest_task(dev: Dev, prefix: str) -> dict[str, Any]:
    found = [t for t in dev.manifest()["tasks"] if t["id"].startswith(prefix)]
    assert len(found) == 1, found
    task: dict[str, Any] = found[0]
    return task


def v1_task_path(task: dict[str, Any]) -> str:
    return (
        f"/system/v1/agent/{task['agent_id']}/logs/v1/range/framework/{task['framework_id']}"
        f"/executor/{task['executor_id']}/container/{task['container_id']}?skip_prev=3"
    )


# The printed commands ----------------------------------------------------------------------


def test_every_printed_command_is_one_this_test_runs(dev: Dev) -> None:
    for who in SECTIONS:
        tested = [dev.command(p) for p in PRINTED if p[0] == who]
        token = [] if who == FWD else [dev.command((who, TOKEN_LINE))]
        assert sorted(dev.commands(who)) == sorted([*token, *tested])
    assert "/.venv/bin:" in dev.setup  # `logway` on PATH, as printed
    for who in (SU, DEV, OPS):
        token = out(dev, who, 'echo "$LOGWAY_TOKEN"').strip()
        assert token == dev.manifest()["identities"][who]["token"]


def test_master_and_leader_journals_show_the_master_service(dev: Dev) -> None:
    # journald's own first lines ("Journal started", …) come before the service's.
    for who, pattern in (SU_LEADER, OPS_MASTER):
        check = master_lines(5)
        messages = text_lines(run_until(dev, who, dev.command((who, pattern)), check))
        assert len(messages) == 5, messages
        assert all(m.startswith(MASTER_SERVICES) for m in messages), messages
        assert any(m.startswith(MASTER_SERVICES[0]) for m in messages), messages


def test_an_agents_whole_journal_has_its_tasks_and_service(dev: Dev) -> None:
    # S0 runs a /prod/web instance and /dev/worker; ten lines of three writers hold two of them.
    def both(got: str) -> bool:
        # Right after start-up the journal may hold fewer than ten lines.
        enough = len(text_lines(got)) == 10
        return enough and "/dev/worker " in got and "mesos-agent: status update round " in got

    messages = text_lines(run_until(dev, SU, dev.command(SU_AGENT), both))
    assert len(messages) == 10, messages
    assert any(m.startswith("/dev/worker job done ") for m in messages), messages
    assert any(m.startswith("mesos-agent: status update round ") for m in messages), messages
    assert not any(m.startswith(("/dev/batch", "mesos-master")) for m in messages), messages


def test_a_tasks_v1_range_has_its_lines_under_the_simulators_ids(dev: Dev) -> None:
    got = run_until(dev, SU, dev.command(SU_WORKER_V1), lambda o: len(o.splitlines()) == 5)
    entries = [json.loads(line)["fields"] for line in got.splitlines()]
    assert len(entries) == 5, got
    [task] = [t for t in sim_tasks(dev).values() if t["id"].startswith("dev_worker.")]
    assert {f["STREAM"] for f in entries} <= {"STDOUT", "STDERR"}
    for fields in entries:
        assert fields["MESSAGE"].startswith("/dev/worker "), fields
        assert fields["FRAMEWORK_ID"] == task["framework_id"]
        assert fields["AGENT_ID"] == task["slave_id"]
        assert fields["TASK_ID"] == task["id"]
        assert task["executor_id"] == ""  # command executor: the task id stands in
        assert fields["EXECUTOR_ID"] == task["id"]
        assert fields["CONTAINER_ID"] == container_chain(task)


def test_a_pod_tasks_nested_container_route(dev: Dev) -> None:
    command = dev.command(SU_POD_V1)
    pod = [t for t in sim_tasks(dev).values() if t["id"].startswith("dev_batch.instance-")]
    assert sorted(t["name"] for t in pod) == ["loader", "reporter"]
    loader, reporter = sorted(pod, key=lambda t: str(t["name"]))
    assert loader["executor_id"] == reporter["executor_id"]  # one executor, two containers
    chain = container_chain(loader)
    parent, child = chain.split(".")
    assert container_chain(reporter).split(".")[0] == parent
    assert container_chain(reporter).split(".")[1] != child
    assert f"/executor/{loader['executor_id']}/container/{chain}?" in command
    messages = text_lines(run_until(dev, SU, command, lambda got: len(got.splitlines()) == 5))
    assert len(messages) == 5, messages
    assert all(m.startswith("/dev/batch/loader ") for m in messages), messages


def test_the_follow_line_streams_new_lines(dev: Dev) -> None:
    script = " && ".join([dev.setup, dev.command((SU, TOKEN_LINE)), dev.command(SU_FOLLOW)])
    proc = subprocess.Popen(
        ["bash", "-c", script], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    events: list[dict[str, Any]] = []
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
    messages = [e["fields"]["MESSAGE"] for e in events]
    # S2 runs a /prod/web instance and the pod.
    assert all(m.startswith(("/prod/web ", "/dev/batch/", "mesos-agent:")) for m in messages)
    stamps = [int(str(e["realtime_timestamp"])) for e in events]
    assert stamps == sorted(stamps)


def test_the_v2_line_reads_a_pod_tasks_stderr_by_name(dev: Dev) -> None:
    check = n_lines(5, "/dev/batch/loader warning ")
    messages = run_until(dev, SU, dev.command(SU_V2), check).splitlines()
    assert len(messages) == 5, messages
    assert all(re.fullmatch(r"/dev/batch/loader warning \d+: slow upstream", m) for m in messages)


def test_the_login_lines_log_in(dev: Dev, tmp_path: Path) -> None:
    for who, printed, uid in ((SU, SU_LOGIN, "admin"), (OPS, OPS_LOGIN, "logway-ops")):
        config = tmp_path / who
        got = out(
            dev, who, dev.command(printed), env={**os.environ, "XDG_CONFIG_HOME": str(config)}
        )
        assert f"as {uid}" in got, got
        stored = json.loads((config / "logway" / "credentials.json").read_text())
        assert stored["uid"] == uid
        # The stored token works: the service account may read the master's journal.
        if who == OPS:
            system = "/system/v1/logs/v1/range/?skip_prev=1"
            assert gateway_get(dev, stored["token"], system).status_code == 200


# The dev user's view -------------------------------------------------------------------------


def test_the_dev_lines_work_and_the_denied_ones_show_403(dev: Dev) -> None:
    check = n_lines(3, "/dev/worker job done ")
    lines = run_until(dev, DEV, dev.command(DEV_V2), check).splitlines()
    assert len(lines) == 3, lines
    assert all(re.fullmatch(r"/dev/worker job done \d+", ln) for ln in lines), lines
    for printed in (DEV_DENIED_TASK, DEV_DENIED_SYSTEM):
        got = out(dev, DEV, dev.command(printed))
        assert got.endswith("\nHTTP 403\n"), got
        assert "`dev` lacks the permission this route needs" in got, got


def test_the_dev_user_reads_dev_tasks_only(dev: Dev) -> None:
    doc = dev.manifest()
    token = doc["identities"]["dev"]["token"]
    assert {t["app_id"] for t in doc["tasks"]} == {"/prod/web", "/dev/worker", "/dev/batch"}
    for task in doc["tasks"]:
        expected = 200 if task["app_id"].startswith("/dev/") else 403
        v2 = f"/system/v1/logs/v2/task/{task['id']}/file/stdout?cursor=END&skip=-1"
        for path in (v1_task_path(task), v2):
            assert gateway_get(dev, token, path).status_code == expected, (task, path)
    whole = ["/system/v1/logs/v1/range/?skip_prev=1", "/system/v1/leader/mesos/logs/v1/range/"]
    whole += [f"/system/v1/agent/{a['id']}/logs/v1/range/?skip_prev=1" for a in doc["agents"]]
    for path in whole:
        assert gateway_get(dev, token, path).status_code == 403, path
    # Discovery shows dev the tasks it may read, and no others.
    state = gateway_get(dev, token, "/mesos/master/state").json()
    seen = {t["id"] for f in state["frameworks"] for t in f["tasks"]}
    assert seen == {t["id"] for t in doc["tasks"] if t["role"] == "dev"}


# cluster.json ------------------------------------------------------------------------------


def test_cluster_json_describes_the_running_cluster(dev: Dev) -> None:
    assert stat.S_IMODE(dev.manifest_path.stat().st_mode) == 0o600
    doc = dev.manifest()
    state = mesos_state(dev)
    assert doc["gateway_url"] == f"http://{MASTER}:{dev.ports['gateway']}"
    reader = dev.ports["reader"]
    assert doc["master"] == {
        "id": state["id"],
        "reader_url": f"http://{MASTER}:{reader}",
        "journal_namespace": f"{dev.namespace}-master",
    }
    assert doc["agents"] == [
        {"id": a["id"], "reader_url": f"http://{ip}:{reader}", "journal_namespace": ns}
        for a, ip, ns in zip(
            state["slaves"], AGENTS, [f"{dev.namespace}-s{i}" for i in range(3)], strict=True
        )
    ]
    tasks = sim_tasks(dev)
    assert {t["id"] for t in doc["tasks"]} == set(tasks)
    for entry in doc["tasks"]:
        task = tasks[entry["id"]]
        assert entry["name"] == task["name"]
        assert entry["role"] == task["role"]
        assert entry["agent_id"] == task["slave_id"]
        assert entry["framework_id"] == task["framework_id"]
        assert entry["executor_id"] == (task["executor_id"] or task["id"])
        assert entry["container_id"] == container_chain(task)
    assert {(t["app_id"], t["role"]) for t in doc["tasks"]} == {
        ("/prod/web", "prod"),
        ("/dev/worker", "dev"),
        ("/dev/batch", "dev"),
    }
    config = Path(doc["dcos_config"])
    assert config.name == "dcos-superuser.toml"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert doc["identities"]["superuser"]["token"] in config.read_text()


def test_prod_web_runs_on_every_agent(dev: Dev) -> None:
    doc = dev.manifest()
    webs = [t for t in doc["tasks"] if t["app_id"] == "/prod/web"]
    assert sorted(t["agent_id"] for t in webs) == sorted(a["id"] for a in doc["agents"])
    assert {t["name"] for t in webs} == {"web.prod"}
    token = doc["identities"]["superuser"]["token"]
    for task in webs:
        response = gateway_get(dev, token, v1_task_path(task))
        assert response.status_code == 200
        assert "/prod/web page rendered" in response.text or "/prod/web warning" in response.text


def test_cluster_json_tokens_and_key_work(dev: Dev) -> None:
    doc = dev.manifest()
    ids = doc["identities"]
    gateway = doc["gateway_url"]
    assert gateway_get(dev, ids["superuser"]["token"], "/acs/api/v1/users").status_code == 200
    assert gateway_get(dev, ids["dev"]["token"], "/acs/api/v1/users").status_code == 403
    system = "/system/v1/logs/v1/range/?skip_prev=1"
    assert gateway_get(dev, ids["service"]["token"], system).status_code == 200
    for who in (SU, DEV):
        login = {"uid": ids[who]["uid"], "password": ids[who]["password"]}
        r = httpx.post(f"{gateway}/acs/api/v1/auth/login", json=login, timeout=30)
        assert r.status_code == 200, (who, r.text)
    key = Path(ids["service"]["private_key_path"])
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    body = {
        "uid": "logway-ops",
        "token": TokenSigner.from_file(key).login_token("logway-ops", now=time.time()),
    }
    r = httpx.post(f"{gateway}/acs/api/v1/auth/login", json=body, timeout=30)
    assert r.status_code == 200, r.text
    assert gateway_get(dev, r.json()["token"], system).status_code == 200


# Real clients --------------------------------------------------------------------------------


def test_the_logway_logs_lines(dev: Dev) -> None:
    leader = run_until(dev, SU, dev.command(SU_LOGS_LEADER), master_lines(5))
    assert master_lines(5)(leader), leader
    agent = run_until(
        dev, SU, dev.command(SU_LOGS_AGENT), n_lines(3, "mesos-agent: status update round ")
    )
    assert n_lines(3, "mesos-agent: status update round ")(agent), agent
    check = n_lines(3, "/dev/batch/loader warning ")
    assert check(run_until(dev, SU, dev.command(SU_LOGS_TASK), check))
    # -f: the last ten lines, then new ones.
    followed = following(dev, SU, dev.command(SU_LOGS_FOLLOW)).splitlines()
    assert len(followed) > 10, followed
    assert all("/dev/worker job done " in ln for ln in followed), followed
    check = n_lines(3, "/dev/batch/reporter batch step ")
    assert check(run_until(dev, DEV, dev.command(DEV_LOGS), check))
    # Marathon's lines about /prod/web among /prod/web's own.
    check = n_lines(10, "/prod/web page rendered ", "/prod/web warning ", "marathon: ")
    both = run_until(
        dev, SU, dev.command(SU_LOGS_SCHEDULER), lambda got: check(got) and "marathon: " in got
    )
    assert check(both), both
    assert "marathon: " in both, both
    assert all("/prod/web" in ln for ln in both.splitlines()), both
    denied = sh(dev, DEV, dev.command(DEV_DENIED_LOGS))
    assert denied.returncode == 3, denied
    assert denied.stdout == ""
    check = master_lines(3)
    assert check(run_until(dev, OPS, dev.command(OPS_LOGS), check))


def test_the_merged_lines_follow_prod_web_on_every_agent_as_one_stream(dev: Dev) -> None:
    agents = {a["id"] for a in dev.manifest()["agents"]}
    # logway logs app /prod -f: the last ten lines, then new ones, from every agent's instance.
    followed = following(dev, SU, dev.command(SU_LOGS_APP)).splitlines()
    assert len(followed) > 10, followed
    assert all(": /prod/web " in ln for ln in followed), followed
    pids = {re.search(r"web\.prod\[(\d+)\]:", ln).group(1) for ln in followed}  # type: ignore[union-attr]
    assert len(pids) == len(agents), followed  # one shipper per agent
    # curl: SSE events with composite ids, in time order, each naming its agent.
    script = " && ".join([dev.setup, dev.command((SU, TOKEN_LINE)), dev.command(SU_APP_STREAM)])
    proc = subprocess.Popen(
        ["bash", "-c", script], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    events: list[tuple[str, dict[str, Any]]] = []
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + COMMAND_TIMEOUT
        last_id = ""
        while len(events) < 5 + 2 * len(agents) and time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, "the stream ended"
            if line.startswith("id: "):
                last_id = line[len("id: ") :].strip()
            elif line.startswith("data: "):
                events.append((last_id, json.loads(line[len("data: ") :])))
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(10)
        if proc.stdout:
            proc.stdout.close()
    assert len(events) == 5 + 2 * len(agents), events
    assert all(i.startswith("m2.") for i, _ in events)
    assert len({i for i, _ in events}) == len(events)
    fields = [e["fields"] for _, e in events]
    assert all(f["MESSAGE"].startswith("/prod/web ") for f in fields)
    assert {f["AGENT_ID"] for f in fields} == agents
    stamps = [int(str(e["realtime_timestamp"])) for _, e in events]
    assert stamps == sorted(stamps)


def test_the_dev_users_role_line_reads_only_dev_tasks(dev: Dev) -> None:
    check = n_lines(5, ": /dev/")
    got = run_until(dev, DEV, dev.command(DEV_ROLE), check)
    assert check(got), got


def test_the_dcos_cli_lines(dev: Dev) -> None:
    if not DCOS.exists():
        pytest.skip("the dcos CLI is not installed (bash ../shared/tools/install-dcos-cli.sh)")
    leader = run_until(dev, SU, dev.command(SU_DCOS_LEADER), master_lines(3))
    assert master_lines(3)(leader), leader
    marathon = out(dev, SU, dev.command(SU_DCOS_MARATHON)).splitlines()
    assert len(marathon) == 3, marathon
    assert all(re.search(r"^\S+ \S+: marathon: ", ln) for ln in marathon), marathon
    for who, printed, label in ((SU, SU_DCOS_TASK, "loader"), (DEV, DEV_DCOS_TASK, "reporter")):
        lines = out(dev, who, dev.command(printed)).splitlines()
        assert len(lines) == 3, (who, lines)
        assert all(re.fullmatch(rf"/dev/batch/{label} batch step \d+", ln) for ln in lines), lines
    denied = sh(dev, DEV, dev.command(DEV_DENIED_DCOS))
    assert denied.returncode == 1, denied
    assert DENIED_BY_CLI in denied.stderr, denied.stderr
    assert denied.stdout == ""
    # The CLI took each identity's config: nothing moved into a cluster directory of its own.
    assert list((dev.data_dir / "dcos-cli").iterdir()) == []


# Stop, and run again ---------------------------------------------------------------------------


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


def assert_all_free(hosts_ports: list[tuple[str, int]]) -> None:
    for host, port in hosts_ports:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT: none listens
            s.bind((host, port))


def test_the_forward_lines_ship_prod_lines_and_report(dev: Dev) -> None:
    following(dev, SU, dev.command(FWD_RUN))  # SIGTERM after a few seconds: saved, exit 0
    got = out(dev, SU, dev.command(FWD_WATCH))
    events = [json.loads(line) for line in got.splitlines()]
    assert events
    assert all(e["task_id"].startswith("prod_web.") for e in events)
    status = out(dev, SU, dev.command(FWD_STATUS))
    assert "not running" in status
    assert "position  source: " in status


# The README's examples -------------------------------------------------------------------


def test_the_readmes_sh_examples_run_as_written(dev: Dev) -> None:
    """Every curl and `logway logs` line of the README's ```sh blocks, as a newcomer pastes it
    after `make run`: make run's address and the `<agent id>` placeholder become this
    cluster's, `$T`/`$TOKEN` the superuser's token. Each must answer 200 with something in it
    (a follow: what it printed in 3 s)."""
    manifest = dev.manifest()
    gateway, token = manifest["gateway_url"], manifest["identities"]["superuser"]["token"]
    values = {"http://127.0.0.1:8000": gateway, "<agent id>": manifest["agents"][0]["id"]}
    env = {"T": token, "TOKEN": token, "GATEWAY": gateway, "LOGWAY_TOKEN": token}
    setup, ran = [dev.setup], []
    for line in sh_lines():
        for placeholder, value in values.items():
            line = line.replace(placeholder, value)
        assert not re.search(r"<[a-z ]+>", line), f"a placeholder no test can fill: {line}"
        if re.match(r"^[A-Z_]+=", line):
            setup.append(line)
            continue
        # A follow is cut after 3 s; a read runs to its end (a loaded machine can take longer).
        follows = bool(re.search(r"(^|\s)(-f|--follow|-N)(\s|$)|/stream", line.split("#")[0]))
        cut = 3 if follows else int(COMMAND_TIMEOUT) - 5
        if line.startswith("curl "):
            command = f"curl -w '\\n%{{http_code}}' --max-time {cut} " + line.removeprefix("curl ")
        elif line.startswith("logway logs "):
            # The line may end with a comment: the brace closes on the next line.
            command = f"{{ timeout {cut} {line}\n}}; rc=$?; [ $rc = 0 ] || [ $rc = 124 ]"
        else:
            continue
        done = subprocess.run(
            ["bash", "-c", " && ".join([*setup, command])],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            env={**os.environ, **env},
            cwd="/",
        )
        body, status = done.stdout, "200"
        if line.startswith("curl "):
            assert done.returncode in (0, 28), (line, done.returncode, done.stderr)  # 28: -N
            body, _, status = done.stdout.rpartition("\n")
        assert done.returncode in (0, 28), (line, done.stdout, done.stderr)
        assert status == "200", (line, done.stdout)
        assert body.strip(), f"nothing came of {line}"
        ran.append(line)
    assert len(ran) >= 7, ran


def test_the_openapi_readmes_sdk_example_runs_as_written(dev: Dev, tmp_path: Path) -> None:
    """openapi/README.md's SDK example: its generate command, then its Python as pasted, with
    /tmp and make run's .logway/dev/cluster.json swapped for this test's."""
    text = (ROOT / "openapi" / "README.md").read_text()
    section = text[text.index("## Generating a Python SDK") :]
    generate = re.search(r"```sh\n(.*?)```", section, re.S)
    snippet = re.search(r"```python\n(.*?)```", section, re.S)
    assert generate, "openapi/README.md lost its generate command"
    assert snippet, "openapi/README.md lost its Python example"
    command = generate.group(1).replace("\\\n", " ")
    command = command.replace("/tmp/logway_client", str(tmp_path / "logway_client"))
    made = subprocess.run(
        shlex.split(command), cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert made.returncode == 0, made.stdout + made.stderr
    code = snippet.group(1).replace('"/tmp"', repr(str(tmp_path)))
    code = code.replace('".logway/dev/cluster.json"', repr(str(dev.manifest_path)))
    ran = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert ran.returncode == 0, ran.stderr
    lines = [line for line in ran.stdout.splitlines() if line]
    assert "None" not in lines, ran.stdout  # a refused call prints None
    assert len(lines) >= 4, ran.stdout  # worker.dev's lines, then S0's journal
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d: ", lines[-1]), ran.stdout


def test_sigint_stops_every_process_and_namespace(dev: Dev) -> None:
    # Runs after the tests above (file order): it ends the module's cluster.
    children = _descendants(dev.proc.pid)
    names = [Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ") for pid in children]
    # 4 journalds, a gateway, 4 readers, 6 shippers (3 web, worker, 2 pod tasks) and their tasks.
    assert len(children) == 21, names
    dev.proc.send_signal(signal.SIGINT)
    assert dev.proc.wait(60) == 0, "".join(dev.output)
    assert [pid for pid, start in children.items() if _start_time(pid) == start] == []
    for node in ("master", "s0", "s1", "s2"):
        ns = JournaldNamespace(f"{dev.namespace}-{node}")
        assert not ns.directory.exists()
        assert not ns.runtime_dir.exists()
        assert not ns.conf_path.exists()
    leftovers = subprocess.run(
        ["pgrep", "-f", dev.namespace], capture_output=True, text=True
    ).stdout.split()
    assert leftovers == []
    assert_all_free(
        [(MASTER, dev.ports["mesos"]), (MASTER, dev.ports["gateway"])]
        + [(host, dev.ports["reader"]) for host in (MASTER, *AGENTS)]
    )
    # Stale once the cluster is gone; the kept secrets stay for the next run.
    assert not dev.manifest_path.exists()
    assert not (dev.data_dir / "dcos-superuser.toml").exists()
    assert not (dev.data_dir / "dcos-dev.toml").exists()
    assert (dev.data_dir / "superuser-password").exists()


def test_a_second_run_reuses_the_identities_and_replaces_a_lost_key(dev: Dev) -> None:
    assert dev.proc.poll() is not None, "needs the first run stopped"
    first = dev.first_manifest["identities"]
    key = Path(first["service"]["private_key_path"])
    key.unlink()  # the account exists in the IAM store; its key is gone
    again = start_dev(dev.data_dir, new_namespace_name(), dev.ports, RERUN_AGENT)
    try:
        wait_banner(again)
        doc = again.manifest()
        ids = doc["identities"]
        assert [a["reader_url"] for a in doc["agents"]] == [
            f"http://{RERUN_AGENT}:{dev.ports['reader']}"
        ]
        for who in (SU, DEV):
            assert ids[who]["password"] == first[who]["password"]
        assert ids["service"]["private_key_path"] == str(key)
        assert key.read_bytes() != dev.first_key  # a new key, and the account took it
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        system = "/system/v1/logs/v1/range/?skip_prev=1"
        assert gateway_get(again, ids["service"]["token"], system).status_code == 200
        assert gateway_get(again, ids["dev"]["token"], system).status_code == 403
        worker = manifest_task(again, "dev_worker.")
        assert gateway_get(again, ids["dev"]["token"], v1_task_path(worker)).status_code == 200
        # The first run's tokens are still good: same IAM store, same signing keys.
        assert gateway_get(again, first["superuser"]["token"], system).status_code == 200
        again.proc.send_signal(signal.SIGINT)
        assert again.proc.wait(60) == 0, "".join(again.output)
        assert not again.manifest_path.exists()
    finally:
        end(again)
