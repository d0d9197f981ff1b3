"""What `logway dev` prints once the cluster answers: where everything is, and per identity
commands that work as pasted (tests/cli/test_dev.py runs every curl line, the `logway logs`
lines and the dcos CLI lines)."""

from __future__ import annotations

import shlex
from pathlib import Path

from app.devcluster import manifest
from app.devcluster.accounts import Identities
from app.devcluster.cluster import (
    DEV_BATCH,
    DEV_WORKER,
    PROD_WEB,
    DevCluster,
    SampleTask,
)

DCOS_CLI = Path("/tmp/dcos-cli/bin")  # noqa: S108 (where install-dcos-cli.sh puts it)
INSTALL_DCOS_CLI = "bash ../shared/tools/install-dcos-cli.sh"
AUTH = '-H "Authorization: token=$LOGWAY_TOKEN"'
JSON = "-H 'Accept: application/json'"
SSE = "-H 'Accept: text/event-stream'"
STATUS = "-w '\\nHTTP %{http_code}\\n'"  # the body, then the status on a line of its own
READ_MANIFEST = (  # argv: cluster.json, identity
    "python3 -c 'import json,sys; "
    'print(json.load(open(sys.argv[1]))["identities"][sys.argv[2]]["token"])\''
)


def banner(
    cluster: DevCluster,
    identities: Identities,
    *,
    logway: str,
    path: Path | None,
    redis: str | None = None,
) -> str:
    """`logway`: how to run logway in a shell, once `path` (the venv's scripts) is on PATH.
    `redis`: host:port of the Redis `logway dev --with-redis` started, for the forward
    example (without it, the example writes a file)."""
    gw, data_dir = cluster.gateway_url, cluster.config.data_dir
    cluster_json = manifest.manifest_path(data_dir)
    worker = cluster.task_for(DEV_WORKER)
    webs = cluster.tasks_of(PROD_WEB)
    loader, reporter = cluster.tasks_of(DEV_BATCH)[:2]
    s0, last = cluster.agents[0], cluster.agents[-1]
    system = f"{gw}/system/v1"
    agent_logs = f"{system}/agent/{{}}/logs/v1"

    def curl(url: str, *options: str) -> str:
        return " ".join(["curl", "-s", *options, AUTH, shlex.quote(url)])

    def task_range(task: SampleTask, n: int) -> str:
        return f"{agent_logs.format(task.agent_id)}/range/{task.v1_path}?skip_prev={n}"

    def v2(task: str, file: str, n: int) -> str:
        return f"{system}/logs/v2/task/{task}/file/{file}?cursor=END&skip=-{n}"

    def token(who: str) -> str:
        return f"export LOGWAY_TOKEN=$({READ_MANIFEST} {shlex.quote(str(cluster_json))} {who})"

    def dcos(who: str, command: str) -> str:
        config = shlex.quote(str(manifest.dcos_config_path(data_dir, who)))
        return f"DCOS_CONFIG={config} dcos {command}"

    def section(title: str, *commands: tuple[str, str]) -> list[str]:
        lines = ["", title]
        for comment, command in commands:
            lines += [f"# {comment}"] if comment else []
            lines.append(f"  {command}")
        return lines

    nodes = [
        f"  master  {cluster.master.ip:<10} Mesos master simulator {cluster.mesos_url} "
        f"(leader), node reader {cluster.master.reader_url}, journal {cluster.master.namespace}"
    ]
    nodes += [
        f"  {a.name:<7} {a.ip:<10} agent {a.agent_id}, node reader {a.reader_url}, "
        f"journal {a.namespace}"
        for a in cluster.agents
    ]
    apps = [
        f"  {PROD_WEB:<12} role {webs[0].role:<5} task {webs[0].task.name} on "
        f"{', '.join(t.agent.name for t in webs)} (one per agent)",
        f"  {DEV_WORKER:<12} role {worker.role:<5} task {worker.task.name} on {worker.agent.name}",
        f"  {DEV_BATCH:<12} role {loader.role:<5} pod tasks {loader.task.name}, "
        f"{reporter.task.name} on {loader.agent.name} (nested containers of one executor)",
    ]
    service = identities.service
    key = shlex.quote(str(service.private_key_path))
    search = ":".join(shlex.quote(str(d)) for d in (*([path] if path else []), DCOS_CLI))
    setup = (
        f"export LOGWAY_URL={gw} PATH={search}:$PATH "
        f"DCOS_DIR={shlex.quote(str(manifest.dcos_dir(data_dir)))}"
    )
    lines = [
        "",
        f"Logway dev cluster is up: gateway {gw}. For scripts: {cluster_json} (0600, tokens).",
        "",
        *nodes,
        "",
        f"Marathon ({worker.framework_id}), each task under `logway ship`, writing to stdout "
        "and stderr:",
        *apps,
        "",
        "Identities:",
        f"  superuser        {identities.superuser.uid:<11} password "
        f"{identities.superuser.password}",
        f"  user             {identities.dev.uid:<11} password {identities.dev.password} "
        "(only /dev/* task logs)",
        f"  service account  {service.uid:<11} private key {service.private_key_path} (every log)",
        "",
        f"Console: {gw}/console/ (a browser; sign in with a user and password):",
        f"  {identities.superuser.uid} / {identities.superuser.password}   every node, app, role "
        "and task",
        f"  {identities.dev.uid} / {identities.dev.password}   the /dev/* tasks only",
        "  (the service account has no password: it logs in with its key, not in a browser)",
        "",
        f"# for `logway logs` and the dcos CLI (needs {INSTALL_DCOS_CLI}); then a token below",
        f"  {setup}",
    ]
    lines += section(
        "== as the superuser",
        ("", token("superuser")),
        ("the leading master's journal", curl(f"{system}/leader/mesos/logs/v1/range/?skip_prev=5")),
        (
            f"agent {s0.name}'s whole journal",
            curl(f"{agent_logs.format(s0.agent_id)}/range/?skip_prev=10"),
        ),
        (
            f"{worker.task.name}'s lines through its agent (v1, NDJSON)",
            curl(task_range(worker, 5), JSON),
        ),
        (
            f"the pod task {loader.task.name} (container id: parent.child)",
            curl(task_range(loader, 5)),
        ),
        (
            f"follow agent {last.name}'s journal live (SSE; Ctrl-C to stop)",
            curl(f"{agent_logs.format(last.agent_id)}/stream/?skip_prev=3", "-N", SSE),
        ),
        (
            f"{loader.task.name}'s stderr, found by name (v2)",
            curl(v2(loader.task.name, "stderr", 5)),
        ),
        ("`logway logs` (LOGWAY_URL, LOGWAY_TOKEN)", f"{logway} logs leader -n 5"),
        ("", f"{logway} logs agent {s0.agent_id} --unit {s0.service.unit} -n 3"),
        ("", f"{logway} logs task {loader.task.name} stderr -n 3"),
        ("", f"{logway} logs task {worker.task.name} -f"),
        (
            f"every {PROD_WEB} instance (one per agent) as one stream in time order (Ctrl-C)",
            f"{logway} logs app /prod -f",
        ),
        ("", curl(f"{system}/logs/v1/app/prod/stream/?skip_prev=5", "-N", SSE)),
        (
            "Marathon's lines about /prod among the app's own, in time order",
            f"{logway} logs app /prod --with-scheduler -n 10",
        ),
        ("the dcos CLI, this identity's config", dcos("superuser", "node log --leader --lines=3")),
        ("", dcos("superuser", "node log --leader --component=dcos-marathon --lines=3")),
        ("", dcos("superuser", f"task log --lines=3 {loader.task.name}")),
        (
            "`logway iam …` needs a stored login",
            f"echo {shlex.quote(identities.superuser.password or '')} | {logway} login "
            f"--url {gw} --username {identities.superuser.uid} --password-stdin",
        ),
    )
    denied = webs[0]
    lines += section(
        f"== as {identities.dev.uid}: /dev/* task logs",
        ("", token("dev")),
        (f"{worker.task.name}'s stdout by name (v2)", curl(v2(worker.task.name, "stdout", 3))),
        (
            "the pod task's lines, with logway and the dcos CLI",
            f"{logway} logs task {reporter.task.name} -n 3",
        ),
        ("", dcos("dev", f"task log --lines=3 {reporter.task.name}")),
        (
            "the role's tasks this user may read, merged across agents",
            f"{logway} logs role dev -n 5",
        ),
        (
            f"denied (403): {PROD_WEB} and whole journals; `logway logs` exits 3, the dcos CLI "
            "prints its authorization error",
            curl(v2(denied.task.id, "stdout", 3), STATUS),
        ),
        ("", curl(f"{system}/logs/v1/range/?skip_prev=3", STATUS)),
        ("", f"{logway} logs task {denied.task.id} -n 3"),
        ("", dcos("dev", "node log --leader --lines=3")),
    )
    lines += section(
        f"== as the service account {service.uid}: every log",
        ("", token("service")),
        ("the master's journal", curl(f"{system}/logs/v1/range/?skip_prev=5")),
        ("", f"{logway} logs master -n 3"),
        (
            "a token of its own: a login signed with its private key",
            f"{logway} login --url {gw} --service-account {service.uid} --private-key {key}",
        ),
    )
    state = shlex.quote(str(data_dir / "forward-prod.json"))
    if redis is not None:
        host, _, port = redis.rpartition(":")
        sink = f"'redis://{redis}/0?key=logstash'"
        watch = f"redis-cli -h {host} -p {port} LRANGE logstash -3 -1"
    else:
        out = data_dir / "forward-prod.ndjson"
        sink, watch = shlex.quote(f"file://{out}"), f"tail -n 3 {shlex.quote(str(out))}"
    lines += section(
        "== forward: ship /prod's lines, as the superuser (LOGWAY_TOKEN above), resumably",
        (
            "Logstash's redis input reads this list (README: Integrations); Ctrl-C saves",
            f"{logway} forward app /prod --to {sink} --state {state}",
        ),
        ("in another shell: the newest events", watch),
        ("", f"{logway} forward status --state {state}"),
    )
    lines += ["", "Ctrl-C stops everything.", ""]
    return "\n".join(lines)
