"""The IAM's HTTP API, DC/OS IAM compatible (reference/dcos-logs-api.md §5), under
`/acs/api/v1`. JSON in and out; errors are `LogwayError`s, answered by app.core.problems.

    app.include_router(iam_router(iam, authorizer))

`authorizer` decides the admin API's `dcos:superuser` `full` check and the policy query; it is
normally the embedded authorizer over `iam.store` (a `GrantSource`).
"""

from __future__ import annotations

from fastapi import APIRouter

from app.authz.model import Authorizer
from app.iam.account_routes import account_routes
from app.iam.acl_routes import acl_routes, policy_routes
from app.iam.auth_routes import auth_routes
from app.iam.guard import Guard
from app.iam.service import Iam
from app.iam.views import PREFIX


def iam_router(iam: Iam, authorizer: Authorizer) -> APIRouter:
    guard = Guard(iam, authorizer)
    router = APIRouter(prefix=PREFIX)
    router.include_router(auth_routes(iam, guard))
    router.include_router(policy_routes(guard, authorizer))
    router.include_router(account_routes(iam, guard))
    router.include_router(acl_routes(iam, guard))
    return router
