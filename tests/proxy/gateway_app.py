"""A stand-in gateway for the proxy layer's tests: a few lines of FastAPI over `app.proxy`
with a fixed agent -> node map, service token and uid, and no authentication, authorization
or Mesos, so that the relay is tested alone (the real gateway's routes, `app/gateway/logs.py`,
are tested in tests/gateway). Run in a thread by the fixtures, or as a process for the memory
test:

    python -m tests.proxy.gateway_app --host 127.0.0.1 --port 8000 --node S1=http://127.0.0.2:61001
"""

from __future__ import annotations

import argparse
import re
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI, Request
from starlette.responses import PlainTextResponse, Response

from app.core.errors import BadRequest, NotFound
from app.core.problems import install_error_handlers
from app.proxy import (
    HttpUpstream,
    Proxy,
    ProxyMetrics,
    ResumePolicy,
    UpstreamCall,
    new_upstream_client,
)
from app.proxy.relay import SEND_TIMEOUT

TOKEN = "gateway-service-token"
UID = "bozydar"
AGENT_ID = re.compile(r"^[0-9a-zA-Z-]+$")
# Quick resumes, so that the tests wait little.
# A node reader restarts in 1-2 s, and in more than 10 s on a loaded machine.
TEST_RESUME = ResumePolicy(attempts=30, first_delay=0.1, max_delay=1.0, give_up_after=30.0)


async def service_token(audience: str) -> str:
    return TOKEN


def create_app(
    nodes: MutableMapping[str, str],
    *,
    connect_timeout: float = 0.5,
    resume: ResumePolicy = TEST_RESUME,
    send_timeout: float = SEND_TIMEOUT,
) -> FastAPI:
    metrics = ProxyMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with new_upstream_client(connect_timeout=connect_timeout) as client:
            app.state.proxy = Proxy(
                HttpUpstream(client), metrics=metrics, resume=resume, send_timeout=send_timeout
            )
            yield

    app = FastAPI(lifespan=lifespan, redirect_slashes=False)
    app.state.metrics = metrics
    install_error_handlers(app)

    async def to_node(request: Request, agent: str, prefix: str, upstream_prefix: str) -> Response:
        if not AGENT_ID.match(agent) or agent not in nodes:
            raise NotFound(f"agent `{agent}` unknown")
        raw_path = request.scope["raw_path"].decode("latin-1")
        if not raw_path.startswith(prefix):
            raise BadRequest("agent id must not be percent-encoded")
        call = UpstreamCall.from_request(
            request,
            path=upstream_prefix + raw_path[len(prefix) :],
            node=agent,
            uid=UID,
            token=service_token,
        )
        proxy: Proxy = request.app.state.proxy
        return await proxy.forward(nodes[agent], call)

    # Admin Router's agent route: /system/v1/agent/<id>/logs<rest> → /system/v1/logs<rest>.
    @app.api_route("/system/v1/agent/{agent}/logs{rest:path}", methods=["GET", "HEAD"])
    async def agent_logs(request: Request, agent: str) -> Response:
        prefix = f"/system/v1/agent/{agent}/logs"
        return await to_node(request, agent, prefix, "/system/v1/logs")

    # Straight to a node reader: /node/<id><rest> → <rest>.
    @app.get("/node/{agent}{rest:path}")
    async def node(request: Request, agent: str) -> Response:
        return await to_node(request, agent, f"/node/{agent}", "")

    @app.get("/metrics")
    async def proxy_metrics() -> Response:
        return PlainTextResponse(metrics.prometheus())

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--node", action="append", default=[], metavar="ID=URL")
    args = parser.parse_args()
    nodes = dict(item.split("=", 1) for item in args.node)
    uvicorn.run(
        create_app(nodes), host=args.host, port=args.port, log_level="warning", access_log=False
    )


if __name__ == "__main__":
    main()
