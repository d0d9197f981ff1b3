"""Authorization: the DC/OS permission model, resource ids, the embedded and remote
authorizers, and the route -> permission table."""

from app.authz.acl import AclAuthorizer
from app.authz.audit import AUDIT_LOGGER
from app.authz.model import (
    SUPERUSER_RID,
    Action,
    Authorizer,
    Decision,
    Grant,
    GrantSource,
    PrincipalKind,
)
from app.authz.remote import RemoteIamAuthorizer
from app.authz.resource import InvalidResourceId, canonical, covers, is_canonical
from app.authz.route_table import (
    ROUTES,
    SYSTEM_LOGS_RID,
    AnyOf,
    Authenticated,
    MergedTasks,
    Public,
    Requirement,
    ResourceCheck,
    RouteMatch,
    RouteRule,
    TaskAccess,
    authorize_any,
    match_route,
    requirements_for_task,
    routes_markdown,
)

__all__ = [
    "AUDIT_LOGGER",
    "ROUTES",
    "SUPERUSER_RID",
    "SYSTEM_LOGS_RID",
    "AclAuthorizer",
    "Action",
    "AnyOf",
    "Authenticated",
    "Authorizer",
    "Decision",
    "Grant",
    "GrantSource",
    "InvalidResourceId",
    "MergedTasks",
    "PrincipalKind",
    "Public",
    "RemoteIamAuthorizer",
    "Requirement",
    "ResourceCheck",
    "RouteMatch",
    "RouteRule",
    "TaskAccess",
    "authorize_any",
    "canonical",
    "covers",
    "is_canonical",
    "match_route",
    "requirements_for_task",
    "routes_markdown",
]
