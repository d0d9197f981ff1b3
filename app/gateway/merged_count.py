"""Merged counts (issue 14): `/system/v1/logs/v1/role/{role}/count/` and
`/system/v1/logs/v1/app{app_id…}/count/` answer `{"entries": N}` for what the merged range
with the same parameters would send, without sending it.

Every agent counts its part (its node reader's `/v1/count/`, with the caller's visible
containers, forwarded filters, `grep`, `since` and `until`); the skips and `limit` then apply
to the sum as they apply to the merged whole. A composite `cursor` is refused here. An agent
that cannot be counted makes the answer 503 (a partial sum would be a wrong number).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import orjson
from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from app.core.errors import BadRequest, Unavailable
from app.gateway.deps import LogRead, LogReadDep
from app.gateway.merged import PREFIX, _grep, _params, _planner
from app.merge import Query
from app.merge.fanin import Requester, SourceOpener, SourceSpec, Start, close_quietly, refusal
from app.proxy.errors import UpstreamError

router = APIRouter()

COUNT_PATH = "/v1/count/"
MAX_ANSWER = 256  # `{"entries": N}` and nothing more


@router.get(PREFIX + "/role/{role}/count/")
async def role_count(request: Request, role: str, gate: LogReadDep) -> Response:
    """How many entries (with `grep`: matches) the role's merged range would send."""
    return await _count(request, gate, "role", role)


@router.get(PREFIX + "/app{app_id:path}/count/")
async def app_count(request: Request, app_id: str, gate: LogReadDep) -> Response:
    """How many entries (with `grep`: matches) the app's merged range would send."""
    return await _count(request, gate, "app", app_id)


async def _count(request: Request, gate: LogRead, kind: str, value: str) -> Response:
    planner = _planner(request, gate, kind, value)
    p = _params(request, gate.services.settings, stream=False)
    grep, _ = _grep(request)  # a count counts matches: context changes nothing
    if p.cursor is not None:
        raise BadRequest("`cursor` is not supported on merged counts", parameter="cursor")
    if request.query_params.getlist("include"):
        # Marathon's lines are picked out by the gateway, which a reader's count cannot do.
        raise BadRequest("`include` is not supported on merged counts", parameter="include")
    plan = await planner.plan()  # 403 when the caller may read none of the tasks
    requester = Requester(
        uid=planner.uid,
        client=request.client.host if request.client else None,
        scheme=request.url.scheme,
        token=gate.node_tokens,
        filters=planner.forwarded,
        until=p.until,
        grep=grep,
    )
    opener = SourceOpener(gate.proxy.upstream, requester)
    counts = await asyncio.gather(
        *(_agent_count(opener, spec, p) for spec in plan.sources.values())
    )
    return JSONResponse({"entries": _window(sum(counts), p)})


def _window(total: int, p: Query) -> int:
    n = min(total, p.skip_prev) if p.skip_prev else total
    n = max(0, n - p.skip_next)
    return min(n, p.limit) if p.limit else n


async def _agent_count(opener: SourceOpener, spec: SourceSpec, p: Query) -> int:
    call = replace(opener.call(spec, Start(since=p.since), stream=False), path=COUNT_PATH)
    try:
        response = await opener.upstream.open(spec.reader_url, call)
    except UpstreamError as exc:
        raise Unavailable(f"agent {spec.agent_id} could not be counted: {exc}") from None
    try:
        if response.status_code != 200:
            why = await refusal(response)
            raise Unavailable(f"agent {spec.agent_id} could not be counted: {why}")
        body = b""
        async for chunk in response.chunks():
            body += chunk
            if len(body) > MAX_ANSWER:
                break
        entries = orjson.loads(body).get("entries")
        if not isinstance(entries, int):
            raise ValueError(body[:80])
        return entries
    except (UpstreamError, ValueError, orjson.JSONDecodeError, AttributeError):
        raise Unavailable(f"agent {spec.agent_id} could not be counted") from None
    finally:
        await close_quietly(response)
