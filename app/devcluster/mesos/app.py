"""One simulated Mesos master: its HTTP endpoints, and the `/__sim__/` control API.

Master endpoints (each also without `/master` and with `.json`, as Mesos serves them):
`/master/state`, `/master/state-summary`, `/master/tasks`, `/master/redirect`. A master that
does not lead answers 307 to `//<leader>:<port><path>` (503 "No leader elected" when none
does); `/master/redirect` answers 307 to `//<leader>:<port>` from every master.

Agent endpoints are served here too, keyed by agent id the way Admin Router exposes them:
`/slave/<agent id>/slave(1)/state` (and `/state`, `.json` variants). The agent's address in
the state (`pid`) is simulated and need not be where anything listens.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from app.devcluster.mesos.control import (
    GARBAGE,
    Controls,
    Lifecycle,
    RecordedRequest,
    redact_credential,
)
from app.devcluster.mesos.sim_api import control_routes

TASK_LIMIT = 100  # Mesos master/constants.hpp
STALL_STEP = 0.05

Handler = Callable[[Request], Awaitable[Response]]


def create_master_app(controls: Controls, index: int, lifecycle: Lifecycle) -> Starlette:
    me = controls.masters[index]

    def record(request: Request) -> None:
        controls.record(
            RecordedRequest(
                master=index,
                method=request.method,
                path=request.url.path,
                query=request.url.query,
                user_agent=request.headers.get("user-agent"),
                authorization=redact_credential(request.headers.get("authorization")),
            )
        )

    def master_endpoint(handler: Handler, *, leader_only: bool = True) -> Handler:
        async def endpoint(request: Request) -> Response:
            record(request)
            fault = controls.fault(index)
            if fault is not None and fault.kind == "stall":
                await _stall(
                    fault.seconds,
                    lambda: lifecycle.stopping(index) or controls.fault(index) != fault,
                )
                fault = None
            if fault is not None and fault.kind == "status":
                return PlainTextResponse(fault.body, status_code=fault.status)
            if fault is not None and fault.kind == "garbage":
                return Response(GARBAGE, media_type="application/json")
            if leader_only:
                leader = controls.leader
                if leader is None:
                    return PlainTextResponse("No leader elected", status_code=503)
                if leader != me:
                    query = f"?{request.url.query}" if request.url.query else ""
                    location = f"//{leader.host}:{leader.port}{request.url.path}{query}"
                    return Response(status_code=307, headers={"Location": location})
            response = await handler(request)
            if fault is not None and fault.kind == "trickle":
                return _trickled(
                    response,
                    fault.seconds,
                    lambda: lifecycle.stopping(index) or controls.fault(index) != fault,
                )
            return response

        return endpoint

    # `me` leads (checked just before); a failover since then is no reason to fail.
    async def state(_: Request) -> Response:
        return Response(controls.document.state(me), media_type="application/json")

    async def summary(_: Request) -> Response:
        return _json(controls.document.summary(me))

    async def redirect(_: Request) -> Response:
        leader = controls.leader
        if leader is None:
            return PlainTextResponse("No leader elected", status_code=503)
        return Response(status_code=307, headers={"Location": f"//{leader.host}:{leader.port}"})

    async def tasks(request: Request) -> Response:
        params = request.query_params
        try:
            limit = int(params.get("limit", TASK_LIMIT))
            offset = int(params.get("offset", 0))
        except ValueError:
            return PlainTextResponse("limit and offset must be integers", status_code=400)
        order = params.get("order", "desc")
        if order not in ("asc", "desc") or limit < 0 or offset < 0:
            return PlainTextResponse("bad order, limit or offset", status_code=400)
        return _json(
            controls.document.tasks(
                framework_id=params.get("framework_id"),
                task_id=params.get("task_id"),
                limit=limit,
                offset=offset,
                desc=order == "desc",
            )
        )

    async def agent_state(request: Request) -> Response:
        record(request)
        found = controls.document.agent_state(request.path_params["agent_id"])
        if found is None:
            return PlainTextResponse("No agent found", status_code=404)
        return _json(found)

    routes: list[BaseRoute] = []
    for name, handler, leader_only in (
        ("state", state, True),
        ("state-summary", summary, True),
        ("tasks", tasks, True),
        ("redirect", redirect, False),
    ):
        wrapped = master_endpoint(handler, leader_only=leader_only)
        for prefix in ("/master/", "/"):
            for suffix in ("", ".json") if leader_only else ("",):
                routes.append(Route(f"{prefix}{name}{suffix}", wrapped))
    for path in ("/slave(1)/state", "/state"):
        for suffix in ("", ".json"):
            routes.append(Route(f"/slave/{{agent_id}}{path}{suffix}", agent_state))
    routes.extend(control_routes(controls, lifecycle))
    return Starlette(routes=routes)


async def _stall(seconds: float, interrupted: Callable[[], bool]) -> None:
    # Polled: the fault is cleared, and the server stopped, from other threads.
    for _ in range(math.ceil(seconds / STALL_STEP)):
        if interrupted():
            return
        await asyncio.sleep(STALL_STEP)


def _trickled(
    response: Response, seconds: float, interrupted: Callable[[], bool]
) -> StreamingResponse:
    body = bytes(response.body)

    async def chunks() -> AsyncIterator[bytes]:
        for offset in range(len(body)):
            if interrupted():
                yield body[offset:]
                return
            yield body[offset : offset + 1]
            await asyncio.sleep(seconds)

    headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
    return StreamingResponse(chunks(), status_code=response.status_code, headers=headers)


def _json(value: Any) -> Response:
    return Response(orjson.dumps(value), media_type="application/json")
