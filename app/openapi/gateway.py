"""The gateway's document (`openapi/gateway.json`), from `app.gateway.app.create_app`.

FastAPI sees the cluster log routes as catch-alls (`/system/v1/agent/{agent_id}/logs{rest}`);
each is documented instead as the node reader routes it relays, one operation per node route
that really reaches it (the gateway's own router decides, so a path another route shadows is
left out). Every other route keeps FastAPI's parameters and gets, from the tables here and in
`app.openapi.iam`: an operation id, a summary, bodies, answers, errors, the permission the route
table (`app.authz.route_table`) asks for, and the security schemes unless it is public. A route no
table knows (a new one) is still documented that way, with FastAPI's answers; one that serves
journal entries can say so with `openapi_extra={"x-logway-reading": "<Reading>"}`.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from app.authz.route_table import Authenticated, Public, match_route
from app.core.config import GatewaySettings
from app.gateway.app import create_app
from app.gateway.logs import TASK_FILES
from app.gateway.merged import MAX_ROLE
from app.journal.encoders import TEXT
from app.openapi import common, iam
from app.openapi.node import (
    NODE_OPS,
    PATH_PARAMS,
    SEGMENT,
    components,
    node_routes,
    reading_operation,
)
from app.openapi.readings import PARAMETERS, Reading, parameters, responses
from app.openapi.routes import (
    PLACEHOLDER,
    RouteInfo,
    fastapi_document,
    handler,
    routes_of,
    sample_path,
)

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Relay:
    key: str  # operation id prefix
    whose: str  # "the master's journal", for summaries


# The gateway's relaying routes, by route name (app.gateway.logs).
RELAYS = {
    "master_logs": Relay("master", "This master"),
    "agent_logs": Relay("agent", "An agent"),
    "leader_logs": Relay("leader", "The leading master"),
    "a_master_logs": Relay("a_master", "One master, by IP address"),
    "marathon_leader_logs": Relay("marathon_leader", "The Marathon leader's node"),
}
TASK_ROUTE = "task_file"  # `/system/v1/logs/v2/task/{task}{rest:path}`
TASK_OPS = {"": "task_log", "/file/stdout": "task_stdout", "/file/stderr": "task_stderr"}
# The merged role and app reads (app/gateway/merged.py), by route name.
MERGED = {
    "role_range": (Reading.MERGED_RANGE, "A role's tasks on every agent, merged: a range"),
    "role_stream": (Reading.MERGED_STREAM, "A role's tasks on every agent, merged: followed"),
    "app_range": (Reading.MERGED_RANGE, "An app's or group's tasks, merged: a range"),
    "app_stream": (Reading.MERGED_STREAM, "An app's or group's tasks, merged: followed"),
    "role_count": (Reading.MERGED_COUNT, "A role's merged range: how many entries (matches)"),
    "app_count": (Reading.MERGED_COUNT, "An app's merged range: how many entries (matches)"),
    "role_download": (Reading.MERGED_DOWNLOAD, "A role's merged range, gzipped as a file"),
    "app_download": (Reading.MERGED_DOWNLOAD, "An app's merged range, gzipped as a file"),
    "task_count": (Reading.V2_TASK_COUNT, "A task's stdout or stderr: how many entries (matches)"),
}
# Routes left out, and why.
OMIT = {"other_metadata": "only answers 404 for metadata the gateway does not have"}
GATEWAY_PATH_PARAMS: Json = {
    **PATH_PARAMS,
    "agent_id": {
        "type": "string",
        "pattern": "^[0-9a-zA-Z-]+$",
        "description": "A Mesos agent id (`dcos node`); unknown: 404.",
    },
    "master_ip": {
        **SEGMENT,
        "description": (
            "A master's IP address, as `/mesos_dns/v1/hosts/master.mesos` lists them; unknown: 404."
        ),
    },
    "role": {
        "type": "string",
        "pattern": "^[A-Za-z0-9_][A-Za-z0-9_.-]*$",
        "maxLength": MAX_ROLE,
        "description": "A Mesos role (`prod`).",
    },
    "app_id": {
        "type": "string",
        # What a Marathon app id's rid component takes (app.authz.resource): lower-case
        # names on `/`, no empty, `.` or `..` one.
        "pattern": "^[a-z0-9_-][a-z0-9_.-]*(/[a-z0-9_-][a-z0-9_.-]*)*$",
        "maxLength": 512,
        "description": (
            "A Marathon app id without its leading `/`: `prod/web` (its inner `/` sent as is "
            "or as `%2F`); a group covers its apps (`prod`)."
        ),
    },
    "task": {
        **SEGMENT,
        "description": (
            "A task's id, or a name or id fragment that matches exactly one task the caller "
            "may read (409 lists them otherwise)."
        ),
    },
}
LOG_ERRORS = (
    "BadRequest",
    "Unauthorized",
    "Forbidden",
    "NotFound",
    "BadGateway",
    "ClusterUnavailable",
    "GatewayTimeout",
    "FollowLimit",
)
MERGED_ERRORS = (*LOG_ERRORS[:-1], "MergeLimit")


@dataclass(frozen=True, slots=True)
class Plain:
    """A gateway route that is neither a log reading nor the IAM's."""

    operation_id: str
    summary: str
    media: str = "application/json"
    errors: tuple[str, ...] = ("Unauthorized", "ClusterUnavailable")
    schema: Json | None = None  # default: a string for text, an object for JSON
    description: str | None = None  # of the answer; default: the summary
    tag: str = ""  # default: discovery (ops for the ops routes)
    status: str = "200"


_CAPABILITIES_SCHEMA = {
    "type": "object",
    "properties": {
        "capabilities": {
            "type": "array",
            "items": {"type": "object", "properties": {"name": {"type": "string"}}},
        }
    },
}
_MESOS = "Mesos's own JSON shape, as of the gateway's snapshot, filtered to what the caller sees."
PLAIN: dict[tuple[str, str], Plain] = {
    ("GET", "/capabilities"): Plain(
        "capabilities",
        "Cosmos capabilities: LOGGING, LOGGING_V2",
        media="application/vnd.dcos.capabilities+json;charset=utf-8;version=v1",
        errors=("Unauthorized",),
        schema=_CAPABILITIES_SCHEMA,
    ),
    ("GET", "/dcos-metadata/ui-config.json"): Plain(
        "ui_config", "DC/OS UI config: the logging strategy (journald)", errors=("Unauthorized",)
    ),
    ("GET", "/dcos-metadata/dcos-version.json"): Plain(
        "dcos_version", "DC/OS version document, describing Logway", errors=("Unauthorized",)
    ),
    ("GET", "/mesos_dns/v1/hosts/{host}"): Plain(
        "mesos_dns_hosts",
        "Mesos-DNS records: the leading master for leader.mesos, every known master for "
        "master.mesos",
        schema={
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"host": {"type": "string"}, "ip": {"type": "string"}},
            },
        },
    ),
    ("GET", "/mesos/master/state"): Plain(
        "mesos_master_state", "Mesos master state", description=_MESOS
    ),
    ("GET", "/mesos/master/state.json"): Plain(
        "mesos_master_state_json", "Mesos master state (`.json` alias)", description=_MESOS
    ),
    ("GET", "/mesos/master/state-summary"): Plain(
        "mesos_master_state_summary",
        "Mesos master state summary: agents and frameworks",
        description=_MESOS,
    ),
    ("GET", "/slave/{agent_id}/state.json"): Plain(
        "agent_state",
        "An agent's state (its executors), from the master's",
        errors=("Unauthorized", "NotFound", "ClusterUnavailable"),
        description=_MESOS,
    ),
    ("GET", "/agent/{agent_id}/state.json"): Plain(
        "agent_state_alias",
        "An agent's state (`/agent/` alias)",
        errors=("Unauthorized", "NotFound", "ClusterUnavailable"),
        description=_MESOS,
    ),
    ("GET", "/healthz"): Plain("healthz", "The process answers", media=TEXT, errors=()),
    ("GET", "/readyz"): Plain(
        "readyz",
        "Ready to serve logs: usable cluster state and IAM store (else 503 naming why)",
        media=TEXT,
        errors=("ClusterUnavailable",),
    ),
    ("GET", "/metrics"): Plain(
        "metrics",
        "Prometheus metrics: requests, auth failures, upstream errors, cluster state age",
        media=TEXT,
        errors=("Unauthorized", "Forbidden"),
    ),
    ("GET", "/console/api/catalog"): Plain(
        "console_catalog",
        "The console's list: the nodes (system-logs holders only), apps, roles and tasks the "
        "caller may read, from the same filtered cluster state as `/mesos/master/state`",
        tag="console",
    ),
    ("POST", "/console/api/logout"): Plain(
        "console_logout",
        "Sign out of the console: clears the auth cookie (refused cross-origin)",
        media=TEXT,
        errors=(),
        tag="console",
        status="204",
    ),
    ("GET", "/console/{rest}"): Plain(
        "console_page",
        "The console's page, for every console URL (`/console/nodes/<agent id>`, `/console/"
        "tasks/<task id>`, `/console/apps/<app id>`, `/console/roles/<role>`); it carries no "
        "data: the page reads the log routes itself; `api/…`, `static/…` it does not serve "
        "and a path no route matches (a control character) are 404",
        media="text/html",
        schema={"type": "string"},
        errors=("NotFound",),
        tag="console",
    ),
}

DESCRIPTION = """\
Logway's cluster logging API: the DC/OS Logging API's routes (dcos-log v1 and v2 behind Admin
Router) over every node's journal, the discovery the dcos CLI needs, and an embedded IAM
(DC/OS IAM compatible: users, service accounts, groups, ACLs, login, JWKS).

**Tokens.** `POST /acs/api/v1/auth/login` answers a JWT; send it as `Authorization:
token=<JWT>`, `Authorization: Bearer <JWT>`, or the `dcos-acs-auth-cookie` cookie login sets.
No token or a bad one: 401 with `WWW-Authenticate: acsjwt`. Each operation's
`x-logway-permission` says what the caller must hold (403 otherwise).

**Log bodies** come in three media types, chosen by `Accept`: `text/plain` (the default),
`application/json` (NDJSON: one JournalEntry object per line, not an array) and
`text/event-stream` (`id:` a journald cursor, `data:` a JournalEntry; `Last-Event-ID`
resumes). The `/v1/stream/` routes and the v2 routes asked for `text/event-stream` follow:
the response goes on as new entries are written.

Errors are one line of `text/plain` naming what was wrong; a node reader's failure before the
first byte is JSON (`UpstreamProblem`).
"""

TAGS = [
    {"name": "logs", "description": "Node and task journals (DC/OS Logging API)."},
    {"name": "iam", "description": "Identity and access management (DC/OS IAM API)."},
    {"name": "discovery", "description": "What the dcos CLI asks before reading logs."},
    {"name": "ops", "description": "Operating the gateway."},
    {"name": "console", "description": "The browser console (`/console/`)."},
]


def gateway_document(app: FastAPI | None = None) -> Json:
    """The document of `app`, by default the gateway built with its default settings (none
    from the environment: the document must not depend on who runs it)."""
    if app is None:
        app = create_app(GatewaySettings.model_construct())  # nothing opened before lifespan
    routes = routes_of(app)
    fastapi = fastapi_document(app, routes)
    paths: Json = {}
    node = node_routes()
    for route in routes:
        if route.name in RELAYS:
            _relayed(paths, routes, node, route, RELAYS[route.name])
        elif route.name == TASK_ROUTE:
            _tasks(paths, routes, route)
        elif route.api and route.in_schema and route.name not in OMIT:
            for method in sorted(route.methods - {"HEAD"}):
                op = fastapi["paths"][route.path_format][method.lower()]
                template = documented(route.path_format)
                paths.setdefault(template, {})[method.lower()] = _other(route, method, op)
    _unique_operation_ids(paths)
    parts = components()
    parts["schemas"].update({**iam.SCHEMAS, **iam.body_schemas()})
    document: Json = {
        "openapi": "3.1.0",
        "info": {"title": app.title, "version": app.version, "description": DESCRIPTION},
        "tags": TAGS,
        "paths": paths,
        "components": parts,
    }
    return common.prune(document, keep=("JournalEntry", "TaskFileEvent"))


def _prefix(route: RouteInfo) -> str:
    """`/system/v1/agent/{agent_id}/logs{rest:path}` -> `/system/v1/agent/{agent_id}/logs`."""
    return re.sub(r"\{[a-z_]+:path\}$", "", route.path).rstrip("/")


def _relayed(
    paths: Json,
    routes: list[RouteInfo],
    node: list[RouteInfo],
    relay_route: RouteInfo,
    relay: Relay,
) -> None:
    """One operation per node reader route that reaches `relay_route` through the gateway."""
    prefix = _prefix(relay_route)
    for node_route in node:
        spec = NODE_OPS.get(node_route.name)
        if spec is None or spec.reading is None:
            continue  # the node's own metrics are not a log route
        template = prefix + node_route.path_format
        if _served_by(routes, template) != relay_route.name:
            continue
        op = reading_operation(
            spec.reading,
            operation_id=f"{relay.key}_{node_route.name}",
            summary=f"{relay.whose}: {spec.summary[0].lower()}{spec.summary[1:]}",
            description=spec.description,
            template=template,
            path_params=GATEWAY_PATH_PARAMS,
        )
        _finish(op, template, "logs", LOG_ERRORS)
        paths.setdefault(template, {})["get"] = op


def _tasks(paths: Json, routes: list[RouteInfo], route: RouteInfo) -> None:
    prefix = re.sub(r"\{[a-z_]+:path\}$", "", route.path)
    for rest in TASK_FILES:
        template = prefix + rest
        if _served_by(routes, template) != route.name:
            continue
        file = TASK_FILES[rest]
        op = reading_operation(
            Reading.V2_TASK_FILE,
            operation_id=TASK_OPS[rest],
            summary=f"A task's {file}, by task id or name",
            description=(
                f"The task's {file}, from its agent's journal (dcos-log v2 discovery: where "
                "dcos-log answered 303 to the agent's route, the gateway reads it itself)."
            ),
            template=template,
            path_params=GATEWAY_PATH_PARAMS,
        )
        _finish(op, template, "logs", (*LOG_ERRORS, "AmbiguousTask"))
        paths.setdefault(template, {})["get"] = op


def documented(template: str) -> str:
    """The server's `app{app_id:path}` (the id carries its own leading `/`) as a template a
    generated client can fill: `app/{app_id}`, the id without that `/` (issue 12 §6)."""
    return template.replace("/app{app_id}/", "/app/{app_id}/")


def _served_by(routes: list[RouteInfo], template: str) -> str | None:
    found = handler(routes, sample_path(template))
    return found.name if found else None


def _other(route: RouteInfo, method: str, fastapi_op: Json) -> Json:
    """An IAM, discovery, ops or unknown route: FastAPI's parameters, our answers."""
    spec = iam.OPS.get(route.name)
    if spec is not None and route.path_format.startswith("/acs/api/v1/"):
        op = iam.operation(route.name, route.path_format, spec)
        _finish(op, route.path_format, "iam", spec.errors)
        return op
    if route.name in MERGED and route.path_format.startswith("/system/"):
        reading, summary = MERGED[route.name]
        op = reading_operation(
            reading,
            operation_id=route.name,
            summary=summary,
            description="",
            template=documented(route.path_format),
            path_params=GATEWAY_PATH_PARAMS,
        )
        _finish(op, documented(route.path_format), "logs", MERGED_ERRORS)
        return op
    plain = PLAIN.get((method, route.path_format))
    if plain is not None:
        op = _plain(fastapi_op, plain)
        ops = plain.operation_id in ("healthz", "readyz", "metrics")
        tag = plain.tag or ("ops" if ops else "discovery")
        _finish(op, route.path_format, tag, plain.errors)
        return op
    return _unknown(route, fastapi_op)


def _plain(fastapi_op: Json, plain: Plain) -> Json:
    op = {k: v for k, v in fastapi_op.items() if k not in ("responses", "operationId", "summary")}
    for parameter in op.get("parameters", []):
        parameter["schema"].pop("title", None)
    schema = plain.schema or {"type": "string" if plain.media == TEXT else "object"}
    description = plain.description or plain.summary
    op.update(
        operationId=plain.operation_id,
        summary=plain.summary,
        responses={
            plain.status: {"description": description}
            if plain.status == "204"
            else {"description": description, "content": {plain.media: {"schema": schema}}}
        },
    )
    return op


def _unknown(route: RouteInfo, fastapi_op: Json) -> Json:
    """A route no table here knows: documented from FastAPI, secured, with the usual errors."""
    op = copy.deepcopy(fastapi_op)
    op["operationId"] = route.name
    op.pop("x-logway-reading", None)
    reading = fastapi_op.get("x-logway-reading")
    op["responses"].pop("422", None)
    op["parameters"] = op.get("parameters", []) + _undeclared(route, op)
    errors: tuple[str, ...] = ("Unauthorized", "Forbidden")
    if reading is not None:
        # The reading's parameters, but those the route declares itself.
        names = {p["name"] for p in op["parameters"]}
        op["parameters"] += [
            p
            for p in parameters(Reading(reading))
            if PARAMETERS[p["$ref"].rsplit("/", 1)[1]]["name"] not in names
        ]
        op["responses"] = responses(Reading(reading))
        op["x-logway-reading"] = reading
        errors = LOG_ERRORS
    elif op.get("parameters"):
        errors = ("BadRequest", *errors)
    tag = "logs" if route.path_format.startswith("/system/") else "other"
    _finish(op, route.path_format, tag, errors)
    return op


def _undeclared(route: RouteInfo, op: Json) -> list[Json]:
    """Path placeholders the endpoint does not take as arguments (a `{rest:path}` it reads
    from the request), which FastAPI leaves undeclared."""
    declared = {p["name"] for p in op.get("parameters", []) if p.get("in") == "path"}
    rest = {m[1] for m in PLACEHOLDER.finditer(route.path) if m[0].endswith(":path}")}
    return [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": {"type": "string"},
            "description": (
                "The rest of the path: empty, or starting with `/`."
                if name in rest
                else "A path segment."
            ),
        }
        for name in PLACEHOLDER.findall(route.path_format)
        if name not in declared
    ]


def _finish(op: Json, template: str, tag: str, errors: tuple[str, ...]) -> None:
    """Tags, errors, the permission and the security: none for a public route; 401 for any
    other, and 403 where a permission is checked (the route table's)."""
    op["tags"] = [tag]
    op["responses"].update(common.errors(*errors))
    matched = match_route(sample_path(template))
    requirement = matched.rule.requirement if matched is not None else None
    if requirement is not None:
        permission = requirement.describe()
        op["x-logway-permission"] = permission
        who = f"Who may call it: {permission}."
        op["description"] = f"{op['description']}\n\n{who}" if op.get("description") else who
    if isinstance(requirement, Public):
        op["security"] = []
        return
    op["security"] = common.SECURED
    op["responses"].update(common.errors("Unauthorized"))
    if not isinstance(requirement, Authenticated):
        op["responses"].update(common.errors("Forbidden"))


def _unique_operation_ids(paths: Json) -> None:
    """A name two operations share gets each one's path and method appended."""
    seen: dict[str, int] = {}
    for ops in paths.values():
        for op in ops.values():
            seen[op["operationId"]] = seen.get(op["operationId"], 0) + 1
    for path, ops in paths.items():
        for method, op in ops.items():
            if seen[op["operationId"]] > 1:
                slug = re.sub(r"\W+", "_", path).strip("_")
                op["operationId"] = f"{op['operationId']}_{slug}_{method}"
