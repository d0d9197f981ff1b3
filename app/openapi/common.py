"""What the gateway's and the node reader's documents share: the security schemes, the error
responses (`app.core.problems`' one-line text bodies, the proxy's JSON ones) and the
canonical rendering that makes `make openapi` byte-for-byte repeatable."""

from __future__ import annotations

import json
from typing import Any

from app.authn.extract import AUTH_COOKIE
from app.core.problems import WWW_AUTHENTICATE

Json = dict[str, Any]

# An operation's `security`: any one of the three ways to send a token (app.authn.extract).
SECURED: list[Json] = [{"dcosToken": []}, {"bearer": []}, {"authCookie": []}]

SECURITY_SCHEMES: Json = {
    "dcosToken": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": (
            "DC/OS form: the header's whole value is `token=<JWT>` "
            "(a JWT from `POST /acs/api/v1/auth/login`)."
        ),
    },
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "`Authorization: Bearer <JWT>` (RFC 6750), the same token.",
    },
    "authCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": AUTH_COOKIE,
        "description": (
            "The cookie login sets (HttpOnly, SameSite=Strict), used only when the request has "
            "no `Authorization` header; for browsers (EventSource)."
        ),
    },
}

_NO_CACHE = {
    "description": "`no-cache`",
    "schema": {"type": "string", "const": "no-cache"},
}
_PROBLEM_HEADERS: Json = {
    "Cache-Control": _NO_CACHE,
    "X-Content-Type-Options": {"schema": {"type": "string", "const": "nosniff"}},
}

SCHEMAS: Json = {
    "Problem": {
        "type": "string",
        "description": (
            "An error: one line of plain text naming what was wrong (the parameter, the "
            "missing permission, the unknown agent), ending in a newline. Clients such as the "
            "dcos CLI print it as is."
        ),
        "examples": ["Error parsing parameter `limit`: '-1' is not an unsigned 64-bit integer\n"],
    },
    "UpstreamProblem": {
        "type": "object",
        "description": "The node reader behind the gateway failed before answering.",
        "properties": {
            "error": {"type": "string", "description": "What failed, without addresses."},
            "node": {
                "type": "string",
                "description": "The node: `master`, `leader` or the agent id.",
            },
        },
        "required": ["error", "node"],
    },
}


def _problem(description: str, *, headers: Json | None = None) -> Json:
    return {
        "description": description,
        "headers": {**_PROBLEM_HEADERS, **(headers or {})},
        "content": {"text/plain": {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def _upstream(description: str) -> Json:
    return {
        "description": description,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/UpstreamProblem"}}
        },
    }


# components/responses, by the status code they are used for.
RESPONSES: Json = {
    "BadRequest": _problem(
        "A parameter, header, path value or body is invalid; the message names it."
    ),
    "Unauthorized": _problem(
        "No token, or one that is not acceptable (malformed, expired, badly signed, "
        "unknown key). The message never says which check failed.",
        headers={
            "WWW-Authenticate": {
                "description": "Always `acsjwt`: the dcos CLI accepts only `acsjwt` or `oauthjwt`.",
                "schema": {"type": "string", "const": WWW_AUTHENTICATE},
            }
        },
    ),
    "LoginFailed": _problem(
        "Unknown uid, wrong password, or a service login token that does not verify (the "
        "message does not say which).",
        headers={"WWW-Authenticate": {"schema": {"type": "string", "const": WWW_AUTHENTICATE}}},
    ),
    "Forbidden": _problem(
        "The caller is authenticated but lacks the permission the route needs; the message "
        "names it (`x-logway-permission` of the operation)."
    ),
    "NotFound": _problem("The agent, task, user, group, ACL or file named does not exist."),
    "Conflict": _problem("It exists already, or the request contradicts what exists."),
    "AmbiguousTask": _problem(
        "The task name or id fragment matched more than one task (of those the caller may "
        "read); the message lists their ids, at most ten."
    ),
    "TooManyRequests": _problem(
        "Too many failed logins for this uid or address: wait `Retry-After` seconds.",
        headers={"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
    ),
    "FollowLimit": _problem(
        "Only when following (v1 `stream/`, or v2 with `Accept: text/event-stream`): the caller "
        "already holds as many follows as `max_follows_per_identity` allows (through this "
        "gateway process, or across every replica on the PostgreSQL IAM store). Retry after "
        "`Retry-After` seconds, or close one.",
        headers={"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
    ),
    "MergeLimit": _problem(
        "Over a merged read's limits: too many merged streams held by this caller, or too "
        "many agents for one read (narrow it with `filter=AGENT_ID:…`); the message says "
        "which. Retry after `Retry-After` seconds.",
        headers={"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}},
    ),
    "BadGateway": _upstream(
        "The node reader could not be reached, refused the gateway's credential, or cut its "
        "answer short before the first byte."
    ),
    "ClusterUnavailable": {
        "description": (
            "The gateway cannot answer now: `text/plain` when its Mesos cluster state is "
            "missing or older than the hard limit (the message names the last error) or its "
            "IAM store is unreachable; `application/json` when no connection to the node "
            "reader is free."
        ),
        "headers": dict(_PROBLEM_HEADERS),
        "content": {
            "text/plain": {"schema": {"$ref": "#/components/schemas/Problem"}},
            "application/json": {"schema": {"$ref": "#/components/schemas/UpstreamProblem"}},
        },
    },
    "GatewayTimeout": _upstream("The node reader did not answer in time."),
    "JournalUnavailable": _problem("The journal cannot be read now (libsystemd refused)."),
}


def ref(status: str) -> Json:
    """`{"$ref": …}` to one of `RESPONSES`."""
    if status not in RESPONSES:
        raise KeyError(status)
    return {"$ref": f"#/components/responses/{status}"}


def errors(*names: str) -> Json:
    """`responses` entries for `names` of `RESPONSES`, keyed by their status codes."""
    return {STATUS[name]: ref(name) for name in names}


STATUS = {
    "BadRequest": "400",
    "Unauthorized": "401",
    "LoginFailed": "401",
    "Forbidden": "403",
    "NotFound": "404",
    "Conflict": "409",
    "AmbiguousTask": "409",
    "TooManyRequests": "429",
    "FollowLimit": "429",
    "MergeLimit": "429",
    "BadGateway": "502",
    "ClusterUnavailable": "503",
    "JournalUnavailable": "503",
    "GatewayTimeout": "504",
}


def render(document: Json) -> str:
    """The committed form: keys sorted at every level but one, two-space indent, a trailing
    newline. A response's `content` keeps the order it was built in: `text/plain` first, since
    it is what the server answers without an Accept header and what openapi-python-client
    (which takes the first media type it supports) should parse."""
    return json.dumps(_canonical(document, ()), indent=2, ensure_ascii=False) + "\n"


def _canonical(value: Any, where: tuple[str, ...]) -> Any:
    if isinstance(value, dict):
        ordered = list(value.items()) if _is_content(where) else sorted(value.items())
        return {key: _canonical(item, (*where, key)) for key, item in ordered}
    if isinstance(value, list):
        return [_canonical(item, where) for item in value]
    return value


def _is_content(where: tuple[str, ...]) -> bool:
    """A response's or a request body's media types (not a schema property named so)."""
    if len(where) < 2 or where[-1] != "content":
        return False
    return where[-2] == "requestBody" or (len(where) >= 3 and where[-3] == "responses")


def prune(document: Json, *, keep: tuple[str, ...] = ()) -> Json:
    """Drop the components nothing refers to (a `$ref`, or an `x-sse-data` pointer), but the
    schemas in `keep`, which SDK generators turn into models anyway."""
    components = document["components"]
    seen: set[str] = set()
    pending = _pointers(document["paths"]) | {f"#/components/schemas/{name}" for name in keep}
    while pending:
        pointer = pending.pop()
        if pointer in seen:
            continue
        seen.add(pointer)
        _, _, section, name = pointer.split("/")
        pending |= _pointers(components[section][name])
    for section in ("schemas", "parameters", "responses"):
        kept = {
            k: v
            for k, v in components.get(section, {}).items()
            if f"#/components/{section}/{k}" in seen
        }
        if kept:
            components[section] = kept
        else:
            components.pop(section, None)
    return document


def _pointers(value: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("$ref", "x-sse-data") and isinstance(item, str):
                found.add(item)
            else:
                found |= _pointers(item)
    elif isinstance(value, list):
        for item in value:
            found |= _pointers(item)
    return found
