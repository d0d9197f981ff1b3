"""Merged role and app reads (issue 6): one range or stream over every agent that runs the
role's or app's tasks, in time order, resumable by a composite cursor.

    /system/v1/logs/v1/role/{role}/range/    /system/v1/logs/v1/role/{role}/stream/
    /system/v1/logs/v1/app/{app_id…}/range/  /system/v1/logs/v1/app/{app_id…}/stream/

and `…/range/download`: the range gzipped as a file (`role-<role>.log.gz`,
`app-<app.id>.log.gz`, `-<postfix>` appended when given), as the node reader's download.

The node reader's v1 parameters, where they make sense for a merged whole:

* `filter=FIELD:value` narrows. On CONTAINER_ID, EXECUTOR_ID, FRAMEWORK_ID and AGENT_ID it
  narrows the task set here (intersected with what the caller may read, never forwarded);
  on any other field it is forwarded to every node reader, where it is ANDed.
* `skip_prev=N`: the last N of the merged whole (at most `merge_max_skip_prev`);
  `skip_next=N` (ranges): the merged whole without its first N; `limit` (ranges).
* `since`/`until` (RFC 3339 or unix µs), forwarded.
* `cursor=` or, on streams, `Last-Event-ID` (which wins, and turns the skips off): a
  composite cursor from an earlier merged read's SSE `id`. Not combinable with skips.
* `read_reverse` is refused: a merged whole is read forwards.
* `grep=RE` (repeatable) and `context=N`, forwarded: every node reader searches its tasks'
  lines, so skips and limits count matches, and sends N entries of the same task stream
  around each match, marked `match`/`gap` as on a task's route. A match's before-context
  comes just before it and may be older than entries already sent (the merge is in time
  order, context is not): such entries have no SSE `id` (not a place to resume from), and do
  not move the composite cursor. A resumed stream asks each agent with `Last-Event-ID`, so
  its search resumes exactly (groups included). After the `limit`-th match a range keeps the
  after-context that follows it (up to N entries per agent, and up to the next match).
* `include=scheduler` (issue 18): also the lines of `dcos-marathon.service` on the node
  Marathon leads from that name the app (or a descendant), or one of the role's apps; for
  callers who may read the Marathon leader's journal (403 saying so otherwise). Marathon's
  lines are one more source of the merge (`scheduler` in the composite cursor), and the
  filters and `grep` forwarded to the readers apply to them too.

Order: 401 (no or bad token), 400 (parameters), 403 (no task the caller may read, or the
Marathon leader's journal for `include=scheduler`; 503 when that leader is unknown), 429
(caps), then the read. Caps are per gateway process.
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import partial

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.authz import authorize_any, is_canonical, match_route
from app.authz.route_table import TASK_APP_RID, AnyOf, MergedTasks
from app.core.config import GatewaySettings
from app.core.errors import BadRequest, Forbidden, NotFound
from app.core.problems import problem
from app.gateway.deps import LogRead, LogReadDep
from app.gateway.limits import StreamSlots
from app.gateway.logs import MARATHON_LOGS
from app.journal.encoders import negotiate
from app.journal.params import parse_filters, parse_time, parse_uint
from app.journal.search import parse_search
from app.merge import (
    MergePlan,
    MergeScope,
    Planner,
    Query,
    Requester,
    StreamOptions,
    decode_cursor,
    read_range,
    read_stream,
    split_filters,
)

router = APIRouter()

PREFIX = "/system/v1/logs/v1"
ROUTES = (
    "/role/{role}/range/",
    "/role/{role}/stream/",
    "/app{app_id:path}/range/",
    "/app{app_id:path}/stream/",
    "/role/{role}/count/",
    "/app{app_id:path}/count/",
    "/role/{role}/range/download",
    "/app{app_id:path}/range/download",
)
# A download's file name: the role or app id with anything but these replaced by `_`.
_FILE_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
MAX_ROLE = 256
INCLUDE_SCHEDULER = "scheduler"
STREAMS_RETRY_AFTER = 5  # seconds: another stream of this caller may end by then
AGENTS_RETRY_AFTER = 60  # seconds: the role or app may shrink, or the limit be raised


@router.get(PREFIX + "/role/{role}/range/")
async def role_range(
    request: Request,
    role: str,
    gate: LogReadDep,
) -> Response:
    """The role's tasks' journal lines on every agent, merged in time order."""
    planner = _planner(request, gate, "role", role)
    return await _read(request, planner, gate, stream=False)


@router.get(PREFIX + "/role/{role}/range/download")
async def role_download(
    request: Request,
    role: str,
    gate: LogReadDep,
) -> Response:
    """The role's merged range, gzipped as a file (`role-<role>.log.gz`), as the node
    reader's `/v1/range/download`: the same parameters and format as `range/`."""
    planner = _planner(request, gate, "role", role)
    return await _read(request, planner, gate, stream=False, download=f"role-{role}")


@router.get(PREFIX + "/role/{role}/stream/")
async def role_stream(
    request: Request,
    role: str,
    gate: LogReadDep,
) -> Response:
    """The same, followed: tasks and agents join and leave as the cluster state changes."""
    planner = _planner(request, gate, "role", role)
    return await _read(request, planner, gate, stream=True)


@router.get(PREFIX + "/app{app_id:path}/range/")
async def app_range(
    request: Request,
    app_id: str,
    gate: LogReadDep,
) -> Response:
    """The app's (and its descendants') tasks' journal lines, merged in time order."""
    planner = _planner(request, gate, "app", app_id)
    return await _read(request, planner, gate, stream=False)


@router.get(PREFIX + "/app{app_id:path}/range/download")
async def app_download(
    request: Request,
    app_id: str,
    gate: LogReadDep,
) -> Response:
    """The app's merged range, gzipped as a file (`app-<app id>.log.gz`)."""
    planner = _planner(request, gate, "app", app_id)
    name = "app-" + app_id.strip("/").replace("/", ".")
    return await _read(request, planner, gate, stream=False, download=name)


@router.get(PREFIX + "/app{app_id:path}/stream/")
async def app_stream(
    request: Request,
    app_id: str,
    gate: LogReadDep,
) -> Response:
    """The same, followed."""
    planner = _planner(request, gate, "app", app_id)
    return await _read(request, planner, gate, stream=True)


async def _get_only() -> Response:
    # Without this, HEAD would fall through to the master's whole-journal route.
    response = problem(405, "merged reads answer GET only")
    response.headers["Allow"] = "GET"
    return response


for _path in ROUTES:
    router.add_api_route(PREFIX + _path, _get_only, methods=["HEAD"], include_in_schema=False)


def _scope(gate: LogRead, kind: str, value: str) -> MergeScope:
    # Admitted on its route table rule, which decides per task, in the plan (403 there).
    if not isinstance(gate.target.rule.requirement, MergedTasks):
        raise NotFound("no such route")
    if kind == "role":
        if len(value) > MAX_ROLE or not value.isprintable():
            raise BadRequest("invalid role in path", parameter="role")
    elif not value.startswith("/") or not is_canonical(f"{TASK_APP_RID}:{value}"):
        raise BadRequest(
            f"invalid app id `{value}`: an absolute Marathon app id such as `/prod/web`",
            parameter="app_id",
        )
    return MergeScope(kind, value)


def _planner(request: Request, gate: LogRead, kind: str, value: str) -> Planner:
    """The plan of the role's or app's merged read (`_scope` checks the path's part)."""
    scope = _scope(gate, kind, value)
    narrowing, forwarded = split_filters(parse_filters(request.query_params.getlist("filter")))
    return Planner(
        scope,
        narrowing,
        gate.uid,
        gate.authorizer,
        gate.cluster,
        forwarded=forwarded,
        access_epoch=gate.services.access.epoch,
    )


async def _may_read_scheduler(gate: LogRead) -> None:
    """`include=scheduler` reads the Marathon leader's journal: the caller needs what the
    route table asks of `/system/v1/leader/marathon/logs/…`."""
    matched = match_route(MARATHON_LOGS + "/")
    requirement = matched.rule.requirement if matched is not None else None
    if not isinstance(requirement, AnyOf):  # default deny, should the table ever change
        raise Forbidden(f"no permission opens `include={INCLUDE_SCHEDULER}`")
    if not (await authorize_any(gate.authorizer, gate.uid, requirement.checks)).allowed:
        raise Forbidden(
            f"`{gate.uid}` may not read Marathon's lines (`include={INCLUDE_SCHEDULER}`): they "
            f"come from the Marathon leader's journal, which needs {requirement.describe()}"
        )


def _too_many(message: str, retry_after: int) -> Response:
    response = problem(429, message)
    response.headers["Retry-After"] = str(retry_after)
    return response


def _include_scheduler(request: Request) -> bool:
    """`include=scheduler` (given, and nothing else to include), or 400."""
    included = request.query_params.getlist("include")
    if any(value != INCLUDE_SCHEDULER for value in included):
        raise BadRequest(
            f"`include` takes `{INCLUDE_SCHEDULER}` (Marathon's lines naming the app or the "
            "role's apps)",
            parameter="include",
        )
    return bool(included)


def _params(request: Request, settings: GatewaySettings, *, stream: bool) -> Query:
    params = request.query_params
    if params.get("read_reverse"):
        raise BadRequest(
            "`read_reverse` is not supported on merged reads", parameter="read_reverse"
        )
    limit = parse_uint(params, "limit")
    skip_next = parse_uint(params, "skip_next")
    skip_prev = parse_uint(params, "skip_prev")
    if stream and limit:
        raise BadRequest("Unable to stream events with `limit` parameter", parameter="limit")
    if stream and skip_next:
        raise BadRequest("`skip_next` is not supported on merged streams", parameter="skip_next")
    if skip_prev > settings.merge_max_skip_prev:
        raise BadRequest(
            f"`skip_prev` is at most {settings.merge_max_skip_prev} on merged reads "
            "(merge_max_skip_prev)",
            parameter="skip_prev",
        )
    last_event_id = request.headers.get("last-event-id") if stream else None
    raw_cursor = params.get("cursor")
    cursor = None
    if last_event_id:
        cursor = decode_cursor(last_event_id, parameter="Last-Event-ID")
        skip_prev = 0  # a resume: exactly after the id (the node's rule too)
    elif raw_cursor:
        cursor = decode_cursor(raw_cursor, parameter="cursor")
        if skip_prev or skip_next:
            raise BadRequest(
                "`skip_prev`/`skip_next` cannot be combined with a merged-stream cursor",
                parameter="cursor",
            )
    return Query(
        limit=limit,
        skip_next=skip_next,
        skip_prev=skip_prev,
        since=parse_time(params, "since"),
        until=parse_time(params, "until"),
        cursor=cursor,
        media=negotiate(request.headers.get("accept")),
    )


def _grep(request: Request) -> tuple[tuple[str, ...], int]:
    """The client's `grep` patterns and `context`, checked here (one 400, not one per node
    reader)."""
    params = request.query_params
    search = parse_search(params.getlist("grep"), params.get("context"))
    return (search.patterns, search.context) if search is not None else ((), 0)


def _over_cap(
    plan: MergePlan, planner: Planner, limits: StreamSlots, settings: GatewaySettings, stream: bool
) -> Response | None:
    held = limits.held(planner.uid)
    if stream and held >= settings.merge_max_streams_per_identity:
        return _too_many(
            f"`{planner.uid}` already holds {held} merged streams, the limit per identity "
            f"(merge_max_streams_per_identity={settings.merge_max_streams_per_identity}); "
            "close one or retry later",
            STREAMS_RETRY_AFTER,
        )
    if len(plan.sources) > settings.merge_max_agents:
        return _too_many(
            f"{planner.scope.describe()} spans {len(plan.sources)} agents, over the limit of "
            f"{settings.merge_max_agents} agents per merged read (merge_max_agents); narrow "
            "it with `filter=AGENT_ID:…`",
            AGENTS_RETRY_AFTER,
        )
    return None


def _file_name(name: str, postfix: str | None) -> str:
    """`<name>[-<postfix>]` with nothing a header or a file system would read otherwise."""
    full = "-".join(p for p in (name, postfix) if p)
    return _FILE_NAME_UNSAFE.sub("_", full)[:200]


async def _read(
    request: Request,
    planner: Planner,
    gate: LogRead,
    *,
    stream: bool,
    download: str | None = None,
) -> Response:
    proxy, node_tokens = gate.proxy, gate.node_tokens
    settings = gate.services.settings
    grep, context = _grep(request)
    query = replace(_params(request, settings, stream=stream), context=context)
    if _include_scheduler(request):
        await _may_read_scheduler(gate)
        planner.scheduler = True
    plan = await planner.plan()  # 403 when the caller may read none of the tasks
    limits = gate.services.merge_limits
    refused = _over_cap(plan, planner, limits, settings, stream)
    if refused is not None:
        return refused
    requester = Requester(
        uid=planner.uid,
        client=request.client.host if request.client else None,
        scheme=request.url.scheme,
        token=node_tokens,
        filters=planner.forwarded,
        until=query.until,
        grep=grep,
        context=context,
        answer_timeout=settings.merge_agent_timeout,
    )
    if not stream:
        name = None
        if download is not None:
            name = _file_name(download, request.query_params.get("postfix"))
        return await read_range(
            plan, proxy.upstream, requester, query, metrics=proxy.metrics, download=name
        )
    cap = settings.merge_max_streams_per_identity
    release = await limits.acquire(planner.uid, cap)
    if release is None:
        return _too_many(
            f"`{planner.uid}` already holds {cap} merged streams, the limit per identity "
            f"(merge_max_streams_per_identity={cap}); close one or retry later",
            STREAMS_RETRY_AFTER,
        )
    try:
        return await read_stream(
            planner,
            plan,
            proxy.upstream,
            requester,
            query,
            max_agents=settings.merge_max_agents,
            options=StreamOptions(
                window=settings.merge_reorder_window,
                membership_period=settings.merge_membership_period,
                send_timeout=proxy.send_timeout,
            ),
            metrics=proxy.metrics,
            on_close=release,
            watch=partial(
                gate.services.access.register, planner.uid, gate.target.caller.valid_until
            ),
        )
    except BaseException:
        release()
        raise
