"""Where a request's token comes from (reference/dcos-logs-api.md §4.1, security.md J18).

1. The `Authorization` header: `token=<JWT>` (DC/OS) or `Bearer <JWT>` (RFC 6750).
2. Only when there is no `Authorization` header at all, the `dcos-acs-auth-cookie` cookie. A
   header always wins: a bad header is a bad request even with a good cookie (Adminrouter).
3. Never the query string: it ends up in access logs and proxies' logs.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection

from app.authn.errors import Reason, TokenRejected

AUTH_COOKIE = "dcos-acs-auth-cookie"
_DCOS_PREFIX = "token="
_BEARER_SCHEME = "bearer"
_SCHEME_HELP = "Authorization header must be 'token=<JWT>' or 'Bearer <JWT>'"


def extract_token(conn: HTTPConnection) -> str | None:
    """The token the request carries, `None` if it carries none; raises `TokenRejected` for an
    `Authorization` header we cannot read."""
    values = conn.headers.getlist("authorization")
    if len(values) > 1:
        raise TokenRejected(Reason.AUTH_HEADER, _SCHEME_HELP)
    if values:
        return _from_authorization(values[0])
    # An empty cookie is what logout leaves behind: no credentials, not bad ones.
    return conn.cookies.get(AUTH_COOKIE) or None


def _from_authorization(value: str) -> str:
    value = value.strip()
    if value[: len(_DCOS_PREFIX)].lower() == _DCOS_PREFIX:
        token = value[len(_DCOS_PREFIX) :]
    else:
        scheme, _, token = value.partition(" ")
        if scheme.lower() != _BEARER_SCHEME:
            raise TokenRejected(Reason.AUTH_SCHEME, _SCHEME_HELP)
        token = token.strip()
    if not token:
        raise TokenRejected(Reason.AUTH_HEADER, _SCHEME_HELP)
    return token
