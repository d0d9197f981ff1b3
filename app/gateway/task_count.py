"""A task's count (issue 14): `/system/v1/logs/v2/task/{task}/file/{stdout|stderr}/count`
answers `{"entries": N}` for what `…/v2/task/{task}/file/{file}` with the same parameters
would send, without sending it (with `grep=`: its matches).

The task is found by id or name and authorized as on its file route (admission); the count
is its agent's node reader's v1 task count (`/v1/count/framework/…/container/…`) narrowed to
the file's `STREAM`. The file route's v2 parameters are translated, not forwarded byte for
byte: `skip=-N` is `skip_prev=N`, `skip=N` is `skip_next=N`, `cursor=BEG` is the head and
`cursor=END` the last entry; `limit`, `since`, `until`, `filter` and `grep` are passed on,
`context` is ignored (a count counts matches).
"""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.core.errors import BadRequest, NotFound
from app.gateway.deps import LogReadDep
from app.gateway.logs import V2_TASK
from app.proxy import UpstreamCall

router = APIRouter()

STREAMS = {"stdout": "STDOUT", "stderr": "STDERR"}
# The v2 parameters passed on unchanged (each may repeat; the node reader validates them).
PASSED = ("limit", "since", "until", "filter", "grep")


@router.get(V2_TASK + "/file/{file}/count")
async def task_count(request: Request, file: str, gate: LogReadDep) -> Response:
    """How many entries (with `grep`: matches) the task's `file` would send."""
    stream = STREAMS.get(file)
    if stream is None:
        raise NotFound(f"`{file}` unknown: a task's journal has `stdout` and `stderr`")
    found = gate.target.task
    if found is None:  # pragma: no cover - admission resolves this route's task or refuses
        raise NotFound("no such task")
    if not found.container_id:
        raise NotFound(f"task `{found.id}` has no container yet, so no output")
    agent = await gate.cluster.resolve_agent(found.agent_id)
    segments = (
        "framework",
        found.framework_id,
        "executor",
        found.executor_id,
        "container",
        found.container_id,
    )
    path = "/v1/count/" + "/".join(quote(s, safe="") for s in segments)
    call = UpstreamCall.from_request(
        request, path=path, node=agent.id, uid=gate.uid, token=gate.node_tokens
    )
    call = replace(call, query=v1_count_query(request, stream))
    return await gate.proxy.forward(agent.reader_url, call)


def v1_count_query(request: Request, stream: str) -> bytes:
    """The file route's v2 parameters as the node reader's v1 count takes them, narrowed to
    `STREAM=stream`; 400 for a `skip` that is not an integer or a filter on another stream."""
    params = request.query_params
    out: list[tuple[str, str]] = [("filter", f"STREAM:{stream}")]
    for name, value in params.multi_items():
        if name == "filter" and value.upper().startswith("STREAM:"):
            if value.partition(":")[2] != stream:
                raise BadRequest(
                    f"filter {value} contradicts the file's STREAM={stream}", parameter="filter"
                )
            continue
        if name in PASSED:
            out.append((name, value))
    skip_raw = params.get("skip")
    skip = 0
    if skip_raw:
        try:
            skip = int(skip_raw)
        except ValueError:
            raise BadRequest(
                f"unable to parse skip parameter: {skip_raw!r} is not an integer", parameter="skip"
            ) from None
    # As the node reader's v2 positioning (app/journal/params.py v2_query).
    skip_next, skip_prev = (skip, 0) if skip > 0 else (0, -skip)
    cursor = params.get("cursor")
    if cursor == "BEG":
        skip_prev = 0
    elif cursor == "END":
        skip_prev = max(skip_prev, 1)
    elif cursor:
        out.append(("cursor", cursor))
    if skip_next:
        out.append(("skip_next", str(skip_next)))
    if skip_prev:
        out.append(("skip_prev", str(skip_prev)))
    return "&".join(f"{k}={quote(v, safe='')}" for k, v in out).encode("ascii")
