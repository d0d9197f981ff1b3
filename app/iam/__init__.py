"""The embedded IAM: users, service accounts, groups and ACLs (SQLite on one host, or
PostgreSQL shared by gateway replicas), RS256 signing keys,
login (password or service login token), JWKS and the DC/OS-compatible admin API."""

from app.authz.route_table import POLICYQUERY_RID
from app.iam.api import serve_iam
from app.iam.bootstrap import Bootstrapped, bootstrap
from app.iam.errors import Conflict, TooManyRequests
from app.iam.service import Iam
from app.iam.settings import IamSettings
from app.iam.store import IamStore

__all__ = [
    "POLICYQUERY_RID",
    "Bootstrapped",
    "Conflict",
    "Iam",
    "IamSettings",
    "IamStore",
    "TooManyRequests",
    "bootstrap",
    "serve_iam",
]
