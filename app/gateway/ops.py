"""Operating the gateway: `/metrics` (Prometheus), `/healthz` (the process answers) and
`/readyz` (it can serve logs: a usable cluster state and a working IAM, i.e. the embedded IAM's
store or a remote IAM's JWKS)."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from starlette.responses import PlainTextResponse, Response

from app.gateway.deps import AuthorizerDep, CallerDep, ClusterDep
from app.gateway.logs import authorize
from app.gateway.metrics import GatewayMetrics
from app.iam import IamStore

log = logging.getLogger(__name__)
router = APIRouter()

PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"


@router.get("/healthz")
async def healthz() -> Response:
    return PlainTextResponse("ok\n")


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    problems = await not_ready(request)
    if problems:
        return PlainTextResponse("not ready: " + "; ".join(problems) + "\n", status_code=503)
    return PlainTextResponse("ready\n")


@router.get("/metrics")
async def metrics(
    request: Request, caller: CallerDep, authorizer: AuthorizerDep, cluster: ClusterDep
) -> Response:
    await authorize(request, caller.uid, authorizer, cluster, node_id=None)
    state = request.app.state
    gateway: GatewayMetrics = state.metrics
    ready = not await not_ready(request)
    body = gateway.prometheus(snapshot_age=cluster.age(), ready=ready)
    return Response(body + state.proxy_metrics.prometheus(), media_type=PROMETHEUS)


async def not_ready(request: Request) -> list[str]:
    """What keeps the gateway from serving logs; empty when ready."""
    state = request.app.state
    problems = []
    age = state.cluster.age()
    hard_limit = state.cluster_settings.hard_limit
    if age is None or age > hard_limit:
        problems.append(f"cluster state unusable ({state.cluster.last_error or 'too old'})")
    iam_problem: str | None = await state.iam_problem()
    if iam_problem is not None:
        problems.append(iam_problem)
    return problems


async def store_problem(store: IamStore) -> str | None:
    """The embedded IAM's readiness: its store answers."""
    try:
        await store.has_users()
    except Exception as exc:  # any failure of the store means: not ready
        log.warning("IAM store check failed: %s", type(exc).__name__)
        return "IAM store unreachable"
    return None
