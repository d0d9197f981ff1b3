"""The cluster log routes (reference §3.1): the master's, an agent's and the leader's node
reader behind the gateway. Per request, in this order (ARCHITECTURE §3): authenticate (401),
admission (`app.gateway.admission`: the route table's rule decided, 403; the agent resolved,
404/503), forward with the gateway's own service token (the caller's token never leaves the
gateway)."""

from __future__ import annotations

import re
from functools import partial
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from app.authz import authorize_any
from app.authz.access import StreamAccess
from app.cluster.scheduler import MARATHON
from app.core.errors import BadRequest, NotFound
from app.core.problems import problem
from app.gateway.deps import CallerDep, LogRead, LogReadDep
from app.proxy import RelayResponse, UpstreamCall
from app.proxy.follower import SharedFollow

router = APIRouter()

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
# stream, fields and count (search), v2 component and task files, downloads. Anything else a
# reader serves (its /metrics, future routes) is 404 here (issue 12 §6). Raw, percent-encoded
# segments.
_SEG = r"[^/]+"
_TASK = rf"framework/{_SEG}/executor/{_SEG}/container/{_SEG}"
READER_ROUTES = re.compile(
    rf"/v1/range/(?:download|{_TASK}(?:/download)?)?"
    rf"|/v1/stream/(?:{_TASK})?"
    rf"|/v1/count/(?:{_TASK})?"
    rf"|/v1/fields/{_SEG}"
    rf"|/v2/component(?:/{_SEG})?"
    rf"|/v2/task/frameworks/{_SEG}/executors/{_SEG}/runs/{_SEG}/.+"
)
FOLLOWS_RETRY_AFTER = 5  # seconds: another follow of this caller may end by then


@router.get(MASTER_LOGS, include_in_schema=False)
async def master_logs_slash() -> Response:
    # Admin Router: `absolute_redirect off`, so the Location is relative.
    return RedirectResponse("/system/v1/logs/", status_code=301)


async def _task_file(rest: str, caller: CallerDep) -> str:
    """The file `…/v2/task/{task}<rest>` names: 404 before the task is looked up (after 401)."""
    file = TASK_FILES.get(rest)
    if file is None:
        raise NotFound(f"`{rest}` unknown: a task's journal has `file/stdout` and `file/stderr`")
    return file


@router.api_route(V2_TASK + "{rest:path}", methods=METHODS)
async def task_file(
    request: Request,
    file: Annotated[str, Depends(_task_file)],  # before the read: its 404 comes first
    gate: LogReadDep,
) -> Response:
    """A task's stdout (`…/{task}`, `…/{task}/file/stdout`) or stderr (`…/file/stderr`) by id
    or name (dcos-log v2 discovery, reference §2.4), read from its agent's journal. Where
    dcos-log answered 303 to the agent's route, the gateway resolves the task and forwards
    itself: one round trip, and the caller never needs a route it may not be allowed on.
    `cursor=BEG|END`, signed `skip`, `limit`, SSE follow: the node reader's v2 semantics, the
    query string forwarded byte for byte. DC/OS's sandbox routes (`browse`, `download`, other
    files) are 404: a task's journal has only stdout and stderr."""
    found = gate.target.task
    if found is None:  # pragma: no cover - admission resolves this route's task or refuses
        raise NotFound("no such task")
    if not found.container_id:
        raise NotFound(f"task `{found.id}` has no container yet, so no output")
    agent = await gate.cluster.resolve_agent(found.agent_id)
    segments = ("frameworks", found.framework_id, "executors", found.executor_id, "runs")
    path = "/v2/task/" + "/".join(quote(s, safe="") for s in (*segments, found.container_id))
    return await relay_to_reader(request, gate, agent.reader_url, f"{path}/{file}", agent.id)


@router.api_route(MASTER_LOGS + "/{rest:path}", methods=METHODS)
async def master_logs(
    request: Request,
    gate: LogReadDep,
) -> Response:
    """This master's own node reader (`master_reader_url`, else the leader's)."""
    base = gate.services.settings.master_reader_url
    if base is None:
        base = (await gate.cluster.resolve_leader()).reader_url
    return await relay(request, gate, base, MASTER_LOGS, "master")


@router.api_route("/system/v1/agent/{agent_id}/logs{rest:path}", methods=METHODS)
async def agent_logs(
    request: Request,
    agent_id: str,
    gate: LogReadDep,
) -> Response:
    """An agent's node reader: `/system/v1/agent/<id>/logs<rest>` -> `<rest>` there;
    `…/logs` alone -> 301 to `…/logs/` (the agent's Admin Router answered that itself)."""
    agent = gate.target.agent
    if agent is None:  # pragma: no cover - admission resolves the agent its path names
        raise NotFound(f"agent `{agent_id}` unknown")
    prefix = f"/system/v1/agent/{agent_id}/logs"
    return await relay(request, gate, agent.reader_url, prefix, agent_id)


@router.api_route(LEADER_LOGS + "{rest:path}", methods=METHODS)
async def leader_logs(
    request: Request,
    gate: LogReadDep,
) -> Response:
    """The leading Mesos master's node reader (`dcos node log --leader`)."""
    leader = await gate.cluster.resolve_leader()
    return await relay(request, gate, leader.reader_url, LEADER_LOGS, "leader")


@router.api_route(MARATHON_LOGS + "{rest:path}", methods=METHODS)
async def marathon_leader_logs(
    request: Request,
    gate: LogReadDep,
) -> Response:
    """The Marathon leader's node reader (`dcos node log --leader --component=dcos-marathon`).
    Admin Router asked Marathon's `/v2/leader`; the gateway reads the same fact from the Mesos
    state: the active `marathon` framework's scheduler address, which must be a master or an
    agent the state knows (`app.cluster.scheduler`), else 503 naming why. After admission, as
    every log route: 401 and 403 come first."""
    leader = await gate.cluster.resolve_scheduler(MARATHON)
    return await relay(request, gate, leader.reader_url, MARATHON_LOGS, "marathon-leader")


async def relay(request: Request, gate: LogRead, base_url: str, prefix: str, node: str) -> Response:
    """Forward what follows `prefix` to the node reader at `base_url` (from the snapshot or
    config, never from the client), with the gateway's own credential. Nothing after the
    prefix: 301 to `prefix/`, as the node's Admin Router answered (relative Location)."""
    path = path_after(request, prefix)
    if path == "/" and not request.scope["path"].endswith("/"):
        return RedirectResponse(prefix + "/", status_code=301)
    if not READER_ROUTES.fullmatch(path):
        raise NotFound(f"`{prefix}{path}` is not a log route (v1 range, stream, fields; v2 ...)")
    return await relay_to_reader(request, gate, base_url, path, node)


async def relay_to_reader(
    request: Request, gate: LogRead, base_url: str, path: str, node: str
) -> Response:
    """`path` (already encoded) on the node reader at `base_url`, for `gate`'s caller. A follow
    counts against the caller's `max_follows_per_identity` until it ends: one more is 429."""
    call = UpstreamCall.from_request(
        request, path=path, node=node, uid=gate.uid, token=gate.node_tokens
    )
    if not call.follow:
        return await gate.proxy.forward(base_url, call)
    limits = gate.services.follow_limits
    cap = gate.services.settings.max_follows_per_identity
    release = await limits.acquire(gate.uid, cap)  # counted before the stream opens
    if release is None:
        response = problem(
            429,
            f"`{gate.uid}` already follows {cap} streams, the limit per identity "
            f"(max_follows_per_identity={cap}); close one or retry later",
        )
        response.headers["Retry-After"] = str(FOLLOWS_RETRY_AFTER)
        return response
    try:
        response = await gate.proxy.forward(base_url, call)
    except BaseException:
        release()
        raise
    if isinstance(response, RelayResponse | SharedFollow):
        response.on_close = release
        response.watch = partial(_watch, gate)
    else:  # the node could not be reached: nothing stays open
        release()
    return response


def _watch(gate: LogRead) -> StreamAccess:
    """The follow's lease on its caller's access: until the token's expiry, and while the
    caller still passes the checks admission decided it on (none: nothing to revoke)."""
    target, authorizer = gate.target, gate.authorizer

    async def recheck() -> bool:
        if not target.checks:
            return True
        return (await authorize_any(authorizer, target.uid, target.checks)).allowed

    return gate.services.access.register(target.uid, target.caller.valid_until, recheck)


def path_after(request: Request, prefix: str) -> str:
    """The raw (still percent-encoded) path after `prefix`, starting with '/'."""
    raw = request.scope.get("raw_path")
    raw_path: str = raw.decode("latin-1") if raw else request.scope["path"]
    if not raw_path.startswith(prefix):
        raise BadRequest("the route's prefix must not be percent-encoded")
    rest = raw_path[len(prefix) :]
    return rest if rest.startswith("/") else "/" + rest
