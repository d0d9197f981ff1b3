"""`/__sim__/…`: the simulator's controls over HTTP, for a simulator in another process.

A TEST TOOL FOR LOOPBACK ONLY: anyone who reaches it can move the leader, add agents that the
gateway will then dial, and read which requests were made. Never expose it beyond 127.0.0.0/8.
Recorded credentials are redacted (a JWT keeps its header and claims, not its signature).

    GET    /__sim__/requests[?path=&master=]   recorded requests (JSON list)
    DELETE /__sim__/requests
    PUT    /__sim__/leader        {"leader": 1}  or  {"leader": null}
    PUT    /__sim__/fault         {"kind": "status"|"stall"|"trickle"|"garbage"|"none",
                                   "master": 0|null, "status": 503, "seconds": 2.0,
                                   "body": "..."}
    POST   /__sim__/agents        SimAgent fields         DELETE /__sim__/agents/{id}
    POST   /__sim__/frameworks    SimFramework fields
    PUT    /__sim__/frameworks/{id}   {"host": "127.0.0.3", "webui_url": "…"} (re-registers)
                                       or {"active": false} (disconnects)
    POST   /__sim__/tasks         SimTask fields          DELETE /__sim__/tasks/{id}
    POST   /__sim__/masters/{i}/stop, /__sim__/masters/{i}/start

Control requests are neither recorded nor subject to faults.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from app.devcluster.mesos.control import Controls, Fault, Lifecycle
from app.devcluster.mesos.model import SimAgent, SimFramework, SimTask

FAULT_KINDS = frozenset({"status", "stall", "trickle", "garbage", "none"})
Handler = Callable[[Request], Awaitable[Response]]


def control_routes(controls: Controls, lifecycle: Lifecycle) -> list[BaseRoute]:
    async def requests(request: Request) -> Response:
        if request.method == "DELETE":
            controls.reset_requests()
            return Response(status_code=204)
        master = request.query_params.get("master")
        found = controls.requests(
            request.query_params.get("path"), None if master is None else int(master)
        )
        return _json([r.to_json() for r in found])

    async def leader(request: Request) -> Response:
        controls.set_leader((await _body(request)).get("leader"))
        return Response(status_code=204)

    async def fault(request: Request) -> Response:
        body = await _body(request)
        kind = body.pop("kind", "none")
        master = body.pop("master", None)
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {sorted(FAULT_KINDS)}")
        controls.set_fault(None if kind == "none" else Fault(kind=kind, **body), master)
        return Response(status_code=204)

    async def agents(request: Request) -> Response:
        if request.method == "DELETE":
            return _removed(controls.document.remove_agent(request.path_params["id"]))
        controls.document.add_agent(SimAgent(**await _body(request)))
        return Response(status_code=201)

    async def frameworks(request: Request) -> Response:
        body = await _body(request)
        if request.method == "PUT":
            framework_id = request.path_params["id"]
            if body.get("active") is False:
                controls.document.disconnect_framework(framework_id)
            else:
                controls.document.reregister_framework(
                    framework_id, host=str(body["host"]), webui_url=str(body.get("webui_url", ""))
                )
            return Response(status_code=204)
        controls.document.add_framework(SimFramework(**body))
        return Response(status_code=201)

    async def tasks(request: Request) -> Response:
        if request.method == "DELETE":
            return _removed(controls.document.remove_task(request.path_params["id"]))
        body = await _body(request)
        body["containers"] = tuple(body.get("containers", ()))
        controls.document.add_task(SimTask(**body))
        return Response(status_code=201)

    async def master(request: Request) -> Response:
        index = int(request.path_params["index"])
        actions = {"stop": lifecycle.stop_master, "start": lifecycle.start_master}
        action = actions.get(request.path_params["action"])
        if action is None or not 0 <= index < len(controls.masters):
            return PlainTextResponse("not found", 404)
        # Not on this server's own thread: stopping it waits for this very request.
        threading.Thread(target=action, args=(index,), daemon=True).start()
        return Response(status_code=202)

    def checked(handler: Handler) -> Handler:
        """A body or value the model rejects is the caller's error (400), not ours."""

        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except (ValueError, TypeError, KeyError, IndexError) as exc:
                return PlainTextResponse(f"bad control request: {exc}", 400)

        return endpoint

    table: list[tuple[str, Handler, list[str]]] = [
        ("/__sim__/requests", requests, ["GET", "DELETE"]),
        ("/__sim__/leader", leader, ["PUT"]),
        ("/__sim__/fault", fault, ["PUT"]),
        ("/__sim__/agents", agents, ["POST"]),
        ("/__sim__/agents/{id}", agents, ["DELETE"]),
        ("/__sim__/frameworks", frameworks, ["POST"]),
        ("/__sim__/frameworks/{id}", frameworks, ["PUT"]),
        ("/__sim__/tasks", tasks, ["POST"]),
        ("/__sim__/tasks/{id}", tasks, ["DELETE"]),
        ("/__sim__/masters/{index:int}/{action:str}", master, ["POST"]),
    ]
    return [Route(path, checked(handler), methods=methods) for path, handler, methods in table]


async def _body(request: Request) -> dict[str, Any]:
    body = orjson.loads(await request.body() or b"{}")
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object")
    return body


def _removed(found: bool) -> Response:
    return Response(status_code=204) if found else PlainTextResponse("not found", 404)


def _json(value: Any) -> Response:
    return Response(orjson.dumps(value), media_type="application/json")
