"""The cluster log routes (reference §3.1): the master's, an agent's and the leader's node
reader behind the gateway. Per request, in this order (ARCHITECTURE §3): authenticate (401),
authorize on the route table (403), resolve the node (404/503), forward with the gateway's own
service token (the caller's token never leaves the gateway)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from app.authz import authorize_any, match_route
from app.authz.routes import (
    SYSTEM_LOGS,
    AnyOf,
    Authenticated,
    Public,
    ResourceCheck,
    TaskAccess,
    requirements_for_task,
)
from app.cluster import Ambiguous, ClusterSnapshot, Task
from app.cluster.errors import ambiguous
from app.core.errors import BadRequest, Forbidden, NotFound, Unavailable
from app.core.problems import problem
from app.gateway.deps import AuthorizerDep, CallerDep, ClusterDep, Gate, GateDep
from app.gateway.limits import StreamCount
from app.proxy import RelayResponse, UpstreamCall

router = APIRouter()

AGENT_ID = re.compile(r"[0-9a-zA-Z-]+")
MASTER_LOGS = "/system/v1/logs"
LEADER_LOGS = "/system/v1/leader/mesos/logs"
MARATHON_LOGS = "/system/v1/leader/marathon/logs"
V2_TASK = MASTER_LOGS + "/v2/task/{task}"
# What may follow `…/v2/task/{task}`, and the file it names.
TASK_FILES = {"": "stdout", "/file/stdout": "stdout", "/file/stderr": "stderr"}
# GET only: a node reader serves no HEAD, and a HEAD of a follow would open one (issue 12 §6).
# Any other method is 405 with `Allow: GET`.
METHODS = ["GET"]
# The node reader routes a log route may reach (the dcos-log API, reference §1-§2): v1 range,
# stream and fields, v2 component and task files, downloads. Anything else a reader serves
# (its /metrics, future routes) is 404 here (issue 12 §6). Raw, percent-encoded segments.
_SEG = r"[^/]+"
_TASK = rf"framework/{_SEG}/executor/{_SEG}/container/{_SEG}"
READER_ROUTES = re.compile(
    rf"/v1/range/(?:download|{_TASK}(?:/download)?)?"
    rf"|/v1/stream/(?:{_TASK})?"
    rf"|/v1/fields/{_SEG}"
    rf"|/v2/component(?:/{_SEG})?"
    rf"|/v2/task/frameworks/{_SEG}/executors/{_SEG}/runs/{_SEG}/.+"
)
FOLLOWS_RETRY_AFTER = 5  # seconds: another follow of this caller may end by then


@router.get(MASTER_LOGS, include_in_schema=False)
async def master_logs_slash() -> Response:
    # Admin Router: `absolute_redirect off`, so the Location is relative.
    return RedirectResponse("/system/v1/logs/", status_code=301)


@router.api_route(V2_TASK + "{rest:path}", methods=METHODS)
async def task_file(
    request: Request,
    task: str,
    rest: str,
    gate: GateDep,
) -> Response:
    """A task's stdout (`…/{task}`, `…/{task}/file/stdout`) or stderr (`…/file/stderr`) by id
    or name (dcos-log v2 discovery, reference §2.4), read from its agent's journal. Where
    dcos-log answered 303 to the agent's route, the gateway resolves the task and forwards
    itself: one round trip, and the caller never needs a route it may not be allowed on.
    `cursor=BEG|END`, signed `skip`, `limit`, SSE follow: the node reader's v2 semantics, the
    query string forwarded byte for byte. DC/OS's sandbox routes (`browse`, `download`, other
    files) are 404: a task's journal has only stdout and stderr."""
    file = TASK_FILES.get(rest)
    if file is None:
        raise NotFound(f"`{rest}` unknown: a task's journal has `file/stdout` and `file/stderr`")
    found = await _find_task(task, gate)
    await authorize(request, gate.uid, gate.authorizer, gate.cluster, node_id=None, task=found)
    if not found.container_id:
        raise NotFound(f"task `{found.id}` has no container yet, so no output")
    agent = await gate.cluster.resolve_agent(found.agent_id)
    segments = ("frameworks", found.framework_id, "executors", found.executor_id, "runs")
    path = "/v2/task/" + "/".join(quote(s, safe="") for s in (*segments, found.container_id))
    return await forward(request, gate, agent.reader_url, f"{path}/{file}", agent.id)


@router.api_route(MASTER_LOGS + "/{rest:path}", methods=METHODS)
async def master_logs(
    request: Request,
    gate: GateDep,
) -> Response:
    """This master's own node reader (`master_reader_url`, else the leader's)."""
    await authorize(request, gate.uid, gate.authorizer, gate.cluster, node_id=None)
    base = request.app.state.settings.master_reader_url
    if base is None:
        base = (await gate.cluster.resolve_leader()).reader_url
    return await relay(request, gate, base, MASTER_LOGS, "master")


@router.api_route("/system/v1/agent/{agent_id}/logs{rest:path}", methods=METHODS)
async def agent_logs(
    request: Request,
    agent_id: str,
    gate: GateDep,
) -> Response:
    """An agent's node reader: `/system/v1/agent/<id>/logs<rest>` -> `<rest>` there;
    `…/logs` alone -> 301 to `…/logs/` (the agent's Admin Router answered that itself)."""
    if not AGENT_ID.fullmatch(agent_id):
        raise NotFound(f"agent `{agent_id}` unknown")
    await authorize(request, gate.uid, gate.authorizer, gate.cluster, node_id=agent_id)
    agent = await gate.cluster.resolve_agent(agent_id)
    prefix = f"/system/v1/agent/{agent_id}/logs"
    return await relay(request, gate, agent.reader_url, prefix, agent_id)


@router.api_route(LEADER_LOGS + "{rest:path}", methods=METHODS)
async def leader_logs(
    request: Request,
    gate: GateDep,
) -> Response:
    """The leading Mesos master's node reader (`dcos node log --leader`)."""
    await authorize(request, gate.uid, gate.authorizer, gate.cluster, node_id=None)
    leader = await gate.cluster.resolve_leader()
    return await relay(request, gate, leader.reader_url, LEADER_LOGS, "leader")


@router.api_route(MARATHON_LOGS + "{rest:path}", methods=METHODS)
async def marathon_leader_logs(
    request: Request,
    caller: CallerDep,
    authorizer: AuthorizerDep,
    cluster: ClusterDep,
) -> Response:
    """The Marathon leader's node reader, which `dcos node log --leader
    --component=dcos-marathon` asks for. Admin Router found that node through Marathon's
    `/v2/leader` and answered 503 while it was unknown (reference §3.3); Logway reads only
    the Mesos master's state, which does not say where Marathon leads, so the leader is
    always unknown here. After authorization, as every log route: 401 and 403 come first."""
    await authorize(request, caller.uid, authorizer, cluster, node_id=None)
    raise Unavailable(
        "the Marathon leader is unknown: Logway follows only the Mesos master's state; "
        f"the leading Mesos master's journal is at {LEADER_LOGS}/"
    )


async def relay(request: Request, gate: Gate, base_url: str, prefix: str, node: str) -> Response:
    """Forward what follows `prefix` to the node reader at `base_url` (from the snapshot or
    config, never from the client), with the gateway's own credential. Nothing after the
    prefix: 301 to `prefix/`, as the node's Admin Router answered (relative Location)."""
    path = upstream_path(request, prefix)
    if path == "/" and not request.scope["path"].endswith("/"):
        return RedirectResponse(prefix + "/", status_code=301)
    if not READER_ROUTES.fullmatch(path):
        raise NotFound(f"`{prefix}{path}` is not a log route (v1 range, stream, fields; v2 ...)")
    return await forward(request, gate, base_url, path, node)


async def forward(request: Request, gate: Gate, base_url: str, path: str, node: str) -> Response:
    """`path` (already encoded) on the node reader at `base_url`, for `gate`'s caller. A follow
    counts against the caller's `max_follows_per_identity` until it ends: one more is 429."""
    call = UpstreamCall.from_request(
        request, path=path, node=node, uid=gate.uid, token=gate.node_tokens
    )
    if not call.follow:
        return await gate.proxy.forward(base_url, call)
    limits: StreamCount = request.app.state.follow_limits
    cap: int = request.app.state.settings.max_follows_per_identity
    if limits.held(gate.uid) >= cap:
        response = problem(
            429,
            f"`{gate.uid}` already follows {cap} streams through this gateway, the limit per "
            f"identity (max_follows_per_identity={cap}); close one or retry later",
        )
        response.headers["Retry-After"] = str(FOLLOWS_RETRY_AFTER)
        return response
    release = limits.hold(gate.uid)  # before any await, so the cap cannot be overrun
    try:
        response = await gate.proxy.forward(base_url, call)
    except BaseException:
        release()
        raise
    if isinstance(response, RelayResponse):
        response.on_close = release
    else:  # the node could not be reached: nothing stays open
        release()
    return response


def upstream_path(request: Request, prefix: str) -> str:
    """The raw (still percent-encoded) path after `prefix`, starting with '/'."""
    raw = request.scope.get("raw_path")
    raw_path: str = raw.decode("latin-1") if raw else request.scope["path"]
    if not raw_path.startswith(prefix):
        raise BadRequest("the route's prefix must not be percent-encoded")
    rest = raw_path[len(prefix) :]
    return rest if rest.startswith("/") else "/" + rest


async def authorize(
    request: Request,
    uid: str,
    authorizer: AuthorizerDep,
    cluster: ClusterDep,
    *,
    node_id: str | None,
    task: Task | None = None,
) -> None:
    """The route table decides (a `filter=` never widens); 403 names what is missing.

    `node_id`: the agent the route names; None for the master's own journal, where no task
    runs (a task route there is a whole-journal read). `task`: the task a route resolved
    itself (v2 task by name); otherwise a task route's task is looked up from its path."""
    matched = match_route(request.scope["path"])
    if matched is None:
        raise NotFound("no such route")
    requirement = matched.rule.requirement
    if isinstance(requirement, Public | Authenticated):
        return
    checks: tuple[ResourceCheck, ...]
    if isinstance(requirement, TaskAccess):
        if task is None and node_id is not None:
            task = _task_on(await cluster.snapshot(), node_id, matched.params)
        checks = (
            requirements_for_task(task.app_id, task.role) if task is not None else (SYSTEM_LOGS,)
        )
    elif isinstance(requirement, AnyOf):
        checks = requirement.checks
    else:  # pragma: no cover - every Requirement is handled above
        raise Forbidden("no permission opens this route")
    if not (await authorize_any(authorizer, uid, checks)).allowed:
        if isinstance(requirement, TaskAccess):
            raise Forbidden(_task_denied(uid))
        needed = " or ".join(check.describe() for check in checks)
        raise Forbidden(f"`{uid}` lacks the permission this route needs: {needed}")


def _task_on(snapshot: ClusterSnapshot, agent_id: str, params: Mapping[str, str]) -> Task | None:
    """The one known task a task route's path names on `agent_id`, or None (a whole-journal
    read). v1 names the joined container chain; v2 `runs/<id>/<file>` the task's container
    (joined chain, or a pod's outermost one), `runs/<outer>/tasks/<task id>/<file>` a pod's
    task."""
    framework_id = params.get("framework_id")
    executor_id = params.get("executor_id")
    container_id = params.get("container_id")
    if not (framework_id and executor_id and container_id):
        return None
    file = params.get("file")
    pod_task = None
    if file is not None and file.startswith("/tasks/"):
        pod_task = file.split("/")[2]
    for task in snapshot.all_tasks:
        if not (
            task.agent_id == agent_id
            and task.framework_id == framework_id
            and task.executor_id == executor_id
        ):
            continue
        if file is None:
            matched = task.container_id == container_id
        elif pod_task is not None:
            matched = task.id == pod_task and task.run_container_id == container_id
        else:
            matched = container_id in (task.container_id, task.run_container_id)
        if matched:
            return task
    return None


async def _find_task(query: str, gate: Gate) -> Task:
    """`ClusterState.find_task`, without telling a caller about tasks it may not read: an
    unknown task is 403 to whoever could not read it if it existed, and an ambiguous name
    lists only the candidates the caller may read."""
    try:
        return await gate.cluster.find_task(query)
    except NotFound:
        if not (await authorize_any(gate.authorizer, gate.uid, (SYSTEM_LOGS,))).allowed:
            raise Forbidden(_task_denied(gate.uid)) from None
        raise
    except Ambiguous as exc:
        snapshot = await gate.cluster.snapshot()
        visible = []
        for task_id in exc.candidates:
            task = snapshot.task(task_id)
            if task is not None:
                checks = requirements_for_task(task.app_id, task.role)
                if (await authorize_any(gate.authorizer, gate.uid, checks)).allowed:
                    visible.append(task_id)
        if not visible:
            raise Forbidden(_task_denied(gate.uid)) from None
        raise ambiguous(query, tuple(visible)) from None


def _task_denied(uid: str) -> str:
    # The same words whether or not the task exists, and without its app id or role.
    return f"`{uid}` lacks the permission this route needs: {TaskAccess().describe()}"
