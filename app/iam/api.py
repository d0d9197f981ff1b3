"""The IAM's HTTP API, DC/OS IAM compatible (reference/dcos-logs-api.md §5), under
`/acs/api/v1`. JSON in and out; errors are `LogwayError`s, answered by app.core.problems.

    serve_iam(app, iam, authorizer)

Its routes are admitted as the gateway's are, on their route table rule (`app.iam.deps`).
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from app.authz.gate import check_routes
from app.authz.model import Authorizer
from app.iam import account_routes, acl_routes, auth_routes
from app.iam.deps import IamServices
from app.iam.service import Iam
from app.iam.views import PREFIX

router = APIRouter(prefix=PREFIX)
router.include_router(auth_routes.router)
router.include_router(acl_routes.policy_router)
router.include_router(account_routes.router)
router.include_router(acl_routes.router)


def serve_iam(app: FastAPI, iam: Iam, authorizer: Authorizer) -> None:
    """Serve the IAM's routes from `app`, whose lifespan opens and closes `iam`; `authorizer`
    decides their rules (normally the embedded one over `iam.store`, a `GrantSource`).
    RuntimeError for a route the route table has no rule for."""
    check_routes(router.routes)
    app.state.iam = IamServices(iam, authorizer)
    app.include_router(router)
