"""Operating the gateway: `/metrics` (Prometheus), `/healthz` (the process answers) and
`/readyz` (it can serve logs: a usable cluster state and a working IAM, i.e. the embedded IAM's
store or a remote IAM's JWKS)."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from starlette.responses import PlainTextResponse, Response

from app.gateway.deps import ServicesDep, TargetDep
from app.gateway.services import GatewayServices
from app.iam import IamStore

log = logging.getLogger(__name__)
router = APIRouter()

PROMETHEUS = "text/plain; version=0.0.4; charset=utf-8"


@router.get("/healthz")
async def healthz() -> Response:
    return PlainTextResponse("ok\n")


@router.get("/readyz")
async def readyz(services: ServicesDep) -> Response:
    problems = await not_ready(services)
    if problems:
        return PlainTextResponse("not ready: " + "; ".join(problems) + "\n", status_code=503)
    return PlainTextResponse("ready\n")


@router.get("/metrics")
async def metrics(target: TargetDep, services: ServicesDep) -> Response:
    ready = not await not_ready(services)
    body = services.metrics.prometheus(snapshot_age=services.cluster.age(), ready=ready)
    return Response(body + services.proxy.metrics.prometheus(), media_type=PROMETHEUS)


async def not_ready(services: GatewayServices) -> list[str]:
    """What keeps the gateway from serving logs; empty when ready."""
    cluster = services.cluster
    problems = []
    age = cluster.age()
    if age is None or age > services.cluster_settings.hard_limit:
        problems.append(f"cluster state unusable ({cluster.last_error or 'too old'})")
    iam_problem = await services.iam_problem()
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
