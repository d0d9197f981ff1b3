"""The node reader's document (`openapi/node.json`), from `app.node.app.create_app`.

`NODE_OPS` gives each route its `Reading`; the gateway's document reuses the table for the
node reader routes it relays."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.core.config import NodeSettings
from app.node.app import create_app
from app.openapi import common, readings
from app.openapi.readings import Reading, parameters, responses
from app.openapi.routes import RouteInfo, fastapi_document, path_parameters, routes_of

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class NodeOp:
    reading: Reading | None
    summary: str
    description: str = ""


NODE_OPS: dict[str, NodeOp] = {
    "v1_range": NodeOp(Reading.V1_RANGE, "The whole journal, a range"),
    "v1_range_download": NodeOp(Reading.V1_DOWNLOAD, "The whole journal, a range, gzipped"),
    "v1_task_range": NodeOp(
        Reading.V1_RANGE,
        "A task's journal entries, a range",
        "Entries whose FRAMEWORK_ID, EXECUTOR_ID and CONTAINER_ID are the path's (stdout and "
        "stderr: filter on `STREAM:STDOUT` or `STREAM:STDERR`).",
    ),
    "v1_count": NodeOp(Reading.V1_COUNT, "The whole journal: how many entries a range has"),
    "v1_task_count": NodeOp(Reading.V1_COUNT, "A task's journal: how many entries a range has"),
    "v1_task_download": NodeOp(Reading.V1_DOWNLOAD, "A task's journal entries, gzipped"),
    "v1_stream": NodeOp(Reading.V1_STREAM, "The whole journal, followed"),
    "v1_task_stream": NodeOp(Reading.V1_STREAM, "A task's journal entries, followed"),
    "v1_fields": NodeOp(Reading.V1_FIELDS, "The distinct values of a journal field"),
    "v2_component": NodeOp(Reading.V2_COMPONENT, "The whole journal (v2)"),
    "v2_component_unit": NodeOp(
        Reading.V2_COMPONENT,
        "A systemd unit's entries (v2)",
        "Entries whose UNIT or _SYSTEMD_UNIT is the path's unit (`dcos node log --component`).",
    ),
    "v2_task_file": NodeOp(
        Reading.V2_TASK_FILE,
        "A task's stdout or stderr (v2)",
        "What the task wrote to the file, from the journal (the shipper tags each line "
        "with its task's ids and STREAM).",
    ),
    "v2_pod_task_file": NodeOp(
        Reading.V2_TASK_FILE,
        "A pod task's stdout or stderr (v2)",
        "`runs/{container_id}` names the pod's outermost container; the task is found by "
        "its TASK_ID within the framework and executor.",
    ),
    "metrics": NodeOp(None, "Prometheus metrics: live followers, open journal handles"),
}

# A Mesos id or unit name as one path segment: what the gateway relays (app/proxy/target.py:
# these characters, not `.` or `..`, no `@`), bounded.
SEGMENT: Json = {
    "type": "string",
    "pattern": "^[A-Za-z0-9_~!$&'()*+,;=:-][A-Za-z0-9._~!$&'()*+,;=:-]*$",
    "maxLength": 256,
}
PATH_PARAMS: Json = {
    "framework_id": {**SEGMENT, "description": "The task's Mesos framework id."},
    "executor_id": {
        **SEGMENT,
        "description": "The task's executor id (a command-executor task's is its own id).",
    },
    "container_id": {
        **SEGMENT,
        "description": "The container id; a nested container's chain joined with `.`, "
        "outermost first (v1), or a pod's outermost container (v2 `tasks/`).",
    },
    "task_id": {**SEGMENT, "description": "The pod task's Mesos task id."},
    "file": {
        "$ref": "#/components/schemas/TaskFile",
        "description": "A task's journal has its stdout and stderr (no other sandbox file).",
    },
    "unit": {
        **SEGMENT,
        "description": "A systemd unit with its suffix: `dcos-mesos-master.service`.",
    },
    "field": {
        "$ref": "#/components/schemas/JournalFieldName",
        "description": "One of the fields dcos-log allowed (case-sensitive).",
    },
}

DESCRIPTION = """\
A node's journal over HTTP, compatible with DC/OS's dcos-log (v1 ranges, streams and fields;
v2 components and task files). One runs on every node, normally reachable only by the
gateway: it verifies JWTs with the gateway's JWKS (or a PEM key) and admits only the uids it
is told to (`--allow-uid`, the gateway's service account); any other token is a 401. With
`--no-auth` it checks nothing.

Log bodies come in three media types, chosen by `Accept`: `text/plain` (the default),
`application/json` (NDJSON: one JournalEntry per line) and `text/event-stream`.
"""


def reading_operation(
    reading: Reading,
    *,
    operation_id: str,
    summary: str,
    description: str,
    template: str,
    path_params: Json = PATH_PARAMS,
) -> Json:
    """A log route's operation without security and errors (the document's owner adds them)."""
    op: Json = {
        "operationId": operation_id,
        "summary": summary,
        "parameters": path_parameters(template, path_params) + parameters(reading),
        "responses": responses(reading),
        "x-logway-reading": reading.value,
    }
    if description:
        op["description"] = description
    return op


NODE_ERRORS = ("BadRequest", "Unauthorized", "NotFound", "JournalUnavailable")


def node_routes() -> list[RouteInfo]:
    """The node reader's documented routes, in routing order."""
    return [r for r in routes_of(create_app(NodeSettings.model_construct())) if r.in_schema]


def node_document() -> Json:
    app = create_app(NodeSettings.model_construct())  # nothing is opened before its lifespan
    routes = routes_of(app)
    fastapi = fastapi_document(app, routes)
    paths: Json = {}
    for route in routes:
        if not (route.api and route.in_schema):
            continue
        spec = NODE_OPS.get(route.name)
        for method in sorted(route.methods - {"HEAD"}):
            if spec is None or spec.reading is None:
                op = _plain(fastapi["paths"][route.path_format][method.lower()], route, spec)
            else:
                op = reading_operation(
                    spec.reading,
                    operation_id=route.name,
                    summary=spec.summary,
                    description=spec.description,
                    template=route.path_format,
                )
                op["responses"].update(common.errors(*NODE_ERRORS))
            op["security"] = common.SECURED
            op["tags"] = ["logs" if spec is not None and spec.reading is not None else "ops"]
            paths.setdefault(route.path_format, {})[method.lower()] = op
    document = {
        "openapi": "3.1.0",
        "info": {"title": app.title, "version": app.version, "description": DESCRIPTION},
        "paths": paths,
        "components": components(),
    }
    return common.prune(document, keep=("JournalEntry",))


def _plain(fastapi_op: Json, route: RouteInfo, spec: NodeOp | None) -> Json:
    """A route that is not a log reading: FastAPI's operation, answers in plain text."""
    op = {k: v for k, v in fastapi_op.items() if k not in ("responses", "operationId")}
    op["operationId"] = route.name
    if spec is not None:
        op["summary"] = spec.summary
    op["responses"] = {
        "200": {
            "description": spec.summary if spec else "OK",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **common.errors("Unauthorized"),
    }
    return op


def components() -> Json:
    """Every component either document may use; `common.prune` drops the unused."""
    return {
        "schemas": {**common.SCHEMAS, **readings.SCHEMAS},
        "parameters": readings.PARAMETERS,
        "responses": common.RESPONSES,
        "securitySchemes": common.SECURITY_SCHEMES,
    }
