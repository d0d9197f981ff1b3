"""What `logway dev` prints once the cluster answers: where everything is, and commands that
work as pasted (tests/cli/test_dev.py runs every curl line)."""

from __future__ import annotations

import shlex
from pathlib import Path

from app.devcluster.cluster import DEV_API, DEV_BATCH, PROD_WEB, SUPERUSER, DevCluster, SampleTask

DCOS_CLI = Path("/tmp/dcos-cli/bin")  # noqa: S108 (where install-dcos-cli.sh puts it)
INSTALL_DCOS_CLI = "bash ../shared/tools/install-dcos-cli.sh"
AUTH = '-H "Authorization: token=$LOGWAY_TOKEN"'
JSON = "-H 'Accept: application/json'"
SSE = "-H 'Accept: text/event-stream'"
READ_LOGIN_ANSWER = "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"token\"])'"


def banner(cluster: DevCluster, *, password: str, login_body: Path, logway: str) -> str:
    """`login_body`: a 0600 file with the superuser's login JSON; `logway`: how to run it."""
    gw = cluster.gateway_url
    config = cluster.config
    api, web, pod = (cluster.task_for(app) for app in (DEV_API, PROD_WEB, DEV_BATCH))
    s0, s1 = api.agent, web.agent
    system = f"{gw}/system/v1"

    def curl(url: str, *options: str) -> str:
        return " ".join(["curl", "-s", *options, AUTH, shlex.quote(url)])

    nodes = [
        f"  master  {config.master_ip:<10} Mesos master simulator {cluster.mesos_url} (leader), "
        f"node reader {cluster.master.reader_url}, journal namespace {cluster.master.namespace}"
    ]
    for agent in cluster.agents:
        nodes.append(
            f"  {agent.name:<7} {agent.ip:<10} agent {agent.agent_id}, "
            f"node reader {agent.reader_url}, journal namespace {agent.namespace}"
        )
    tasks = [
        f"  {t.app_id:<11} {t.task.id}  (name {t.task.name}, on {t.agent.name}"
        + (", a pod task in a nested container)" if t.task.executor_id else ")")
        for t in cluster.tasks
    ]
    login_url = f"{gw}/acs/api/v1/auth/login"
    export = (
        f"export LOGWAY_TOKEN=$(curl -s -H 'Content-Type: application/json' "
        f"-d @{shlex.quote(str(login_body))} {login_url} | {READ_LOGIN_ANSWER})"
    )
    dcos_dir = '"$DCOS_DIR/clusters/logway-dev"'
    dcos_setup = (
        f"export PATH={DCOS_CLI}:$PATH DCOS_DIR=$(mktemp -d) && mkdir -p {dcos_dir} && "
        f'touch {dcos_dir}/attached && printf \'[core]\\ndcos_url = "%s"\\n'
        f'dcos_acs_token = "%s"\\n\' {gw} "$LOGWAY_TOKEN" > {dcos_dir}/dcos.toml && '
        f"chmod 600 {dcos_dir}/dcos.toml"  # the CLI refuses a config others may read
    )
    agent_logs = f"{system}/agent/{{}}/logs/v1"

    def task_range(task: SampleTask) -> str:
        return f"{agent_logs.format(task.agent_id)}/range/{task.v1_path}?skip_prev=5"

    v2_task = f"{system}/logs/v2/task/{api.task.name}/file/stdout?cursor=END&skip=-5"
    commands = [
        (
            "the master's journal (its mesos-master service)",
            curl(f"{system}/logs/v1/range/?skip_prev=5"),
        ),
        (
            f"agent {s0.name}'s whole journal",
            curl(f"{agent_logs.format(api.agent_id)}/range/?skip_prev=10"),
        ),
        (
            f"the {api.app_id} task's lines through its agent (v1, NDJSON)",
            curl(task_range(api), JSON),
        ),
        (
            f"the pod task {pod.app_id}/{pod.task.name} (container id: parent.child)",
            curl(task_range(pod)),
        ),
        (
            "the leading Mesos master's journal",
            curl(f"{system}/leader/mesos/logs/v1/range/?skip_prev=5"),
        ),
        (
            f"follow agent {s1.name}'s journal live (SSE; Ctrl-C to stop)",
            curl(f"{agent_logs.format(web.agent_id)}/stream/?skip_prev=3", "-N", SSE),
        ),
        (f"task {api.task.name}'s stdout, found by name (v2), the last 5 lines", curl(v2_task)),
    ]
    lines = [
        "",
        f"Logway dev cluster is up: gateway {gw}, superuser {SUPERUSER!r} password {password!r}.",
        "",
        *nodes,
        "",
        f"Marathon ({api.framework_id}) runs, under `logway ship` on their agents:",
        *tasks,
        "",
        "# a token for the curl lines (or `logway login` for `logway iam …`)",
        f"  {export}",
        f"  echo {shlex.quote(password)} | {logway} login --url {gw} "
        f"--username {SUPERUSER} --password-stdin",
    ]
    for comment, command in commands:
        lines += [f"# {comment}", f"  {command}"]
    lines += [
        f"# the dcos CLI, with the token above (needs the CLI: {INSTALL_DCOS_CLI})",
        f"  {dcos_setup}",
        f"  dcos task log --follow {api.task.id.split('.')[0]}",
        "  dcos node log --leader",
        "",
        "Ctrl-C stops everything.",
        "",
    ]
    return "\n".join(lines)
