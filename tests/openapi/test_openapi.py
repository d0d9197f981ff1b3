"""openapi/: the committed documents are valid OpenAPI 3.1, what `make openapi` writes today,
and complete: every route of the route table, the three media types and the errors of every
log route, the security of every route but the public ones, the IAM's bodies and answers
(checked against the real views)."""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fastapi import Query
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from starlette.responses import Response

from app.authz.model import Action
from app.authz.route_table import ROUTES, Public, match_route
from app.core.config import GatewaySettings
from app.gateway.app import create_app
from app.iam import views
from app.iam.records import Ace, Acl, Group, HeldPermission, User
from app.journal.encoders import FileEventEncoder
from app.journal.entry import Entry
from app.openapi import DOCUMENTS, gateway_document, render
from app.openapi.common import SECURED
from app.openapi.readings import Reading
from app.openapi.routes import sample_path

OPENAPI = Path(__file__).resolve().parents[2] / "openapi"
LOG_MEDIA = ["text/plain", "application/json", "text/event-stream"]
PUBLIC = {
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("post", "/acs/api/v1/auth/login"),
    ("get", "/acs/api/v1/auth/jwks"),
    ("get", "/acs/api/v1/auth/logout"),
    ("get", "/console/{rest}"),
    ("post", "/console/api/logout"),
}
# Rules of the route table that no route of the gateway serves, and why. A rule here that a
# documented path matches fails the test: the gateway serves it now, so it is no exception.
UNSERVED = {
    "/system/v1/logs/v2/task/frameworks/{framework_id}/executors/{executor_id}/runs/"
    "{container_id}{file:path}": "the v2 task-by-name route (`…/v2/task/{task}…`) matches "
    "these paths first and answers 404: the master runs no task",
}
CURSOR = "s=6d2c;i=1a;b=2f4e;m=3c8a1;t=5f8e0c2b1a000;x=9e1"


def committed(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((OPENAPI / name).read_text())
    return document


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m, p, op) for p, ops in document["paths"].items() for m, op in ops.items()]


@pytest.fixture(scope="module")
def gateway() -> dict[str, Any]:
    return committed("gateway.json")


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_the_committed_document_is_what_make_openapi_writes(name: str) -> None:
    path = OPENAPI / name
    assert path.exists(), f"openapi/{name} is missing: run `make openapi`"
    fresh = render(DOCUMENTS[name]())
    text = path.read_text()
    if text != fresh:
        diff = difflib.unified_diff(
            text.splitlines(), fresh.splitlines(), f"committed {name}", "generated", lineterm=""
        )
        pytest.fail(f"openapi/{name} is stale: run `make openapi`\n" + "\n".join(list(diff)[:60]))
    assert fresh == render(DOCUMENTS[name]())  # and generating twice gives the same bytes
    assert fresh.endswith("}\n")


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_the_document_is_valid_openapi_3_1(name: str) -> None:
    document = committed(name)
    assert document["openapi"].startswith("3.1.")
    validate(document, cls=OpenAPIV31SpecValidator)
    ids = [op["operationId"] for _, _, op in operations(document)]
    assert len(ids) == len(set(ids))


def test_every_rule_of_the_route_table_has_a_documented_route(gateway: dict[str, Any]) -> None:
    covered = {}
    for path in gateway["paths"]:
        matched = match_route(sample_path(path))
        if matched is not None:
            covered[matched.rule.pattern] = path
    for rule in ROUTES:
        if rule.pattern in UNSERVED:
            assert rule.pattern not in covered, f"{rule.pattern} is served now: drop it here"
        else:
            assert rule.pattern in covered, f"no documented route for {rule.pattern}"


def test_the_gateway_documents_the_cluster_log_routes(gateway: dict[str, Any]) -> None:
    paths = gateway["paths"]
    for prefix in ("/system/v1/logs", "/system/v1/agent/{agent_id}/logs"):
        for rest in ("/v1/range/", "/v1/stream/", "/v2/component/{unit}", "/v1/fields/{field}"):
            assert prefix + rest in paths
    for rest in ("", "/file/stdout", "/file/stderr"):
        assert f"/system/v1/logs/v2/task/{{task}}{rest}" in paths
    assert "/system/v1/leader/mesos/logs/v1/range/" in paths
    assert not any("{rest}" in p for p in paths if p.startswith("/system/v1/logs"))


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_every_log_route_has_three_media_types_and_its_errors(name: str) -> None:
    document = committed(name)
    errors = ["400", "401", "403"] if name == "gateway.json" else ["400", "401"]
    logs = 0
    for method, path, op in operations(document):
        reading = op.get("x-logway-reading")
        if reading is None:
            assert not (
                name == "gateway.json" and "200" in op["responses"] and "logs" in op["tags"]
            ), (
                f"{method} {path} serves logs but says nothing of how: give the route "
                "openapi_extra={'x-logway-reading': …} or an entry in app/openapi/gateway.py"
            )
            continue
        if not Reading(reading).is_log:
            continue
        logs += 1
        assert list(op["responses"]["200"]["content"]) == LOG_MEDIA, path
        assert "NDJSON" in op["responses"]["200"]["description"], path
        for status in errors:
            assert status in op["responses"], (method, path, status)
        names = {p.get("name") or p["$ref"].rsplit("/", 1)[1] for p in op["parameters"]}
        assert "filter" in names, path
        assert names & {"cursor", "cursorV2", "mergedCursor"}, path
    assert logs >= (25 if name == "gateway.json" else 8)


def test_the_log_parameters_and_error_bodies(gateway: dict[str, Any]) -> None:
    parameters = gateway["components"]["parameters"]
    assert parameters["filter"]["schema"]["type"] == "array"
    assert parameters["filter"]["explode"]
    assert parameters["Last-Event-ID"]["in"] == "header"
    assert "BEG" in parameters["cursorV2"]["description"]
    assert parameters["skip"]["schema"]["minimum"] < 0
    v1 = gateway["paths"]["/system/v1/logs/v1/range/"]["get"]["parameters"]
    assert {p["$ref"].rsplit("/", 1)[1] for p in v1} >= {"skip_prev", "skip_next", "limit"}
    responses = gateway["components"]["responses"]
    www = responses["Unauthorized"]["headers"]["WWW-Authenticate"]["schema"]
    assert www == {"type": "string", "const": "acsjwt"}
    for status in ("BadRequest", "Forbidden", "NotFound", "AmbiguousTask"):
        assert responses[status]["content"] == {
            "text/plain": {"schema": {"$ref": "#/components/schemas/Problem"}}
        }
    assert list(responses["ClusterUnavailable"]["content"]) == ["text/plain", "application/json"]
    task = gateway["paths"]["/system/v1/logs/v2/task/{task}"]["get"]["responses"]
    assert task["409"] == {"$ref": "#/components/responses/AmbiguousTask"}
    assert task["503"] == {"$ref": "#/components/responses/ClusterUnavailable"}


@pytest.mark.parametrize("name", sorted(DOCUMENTS))
def test_security_on_every_route_but_the_public_ones(name: str) -> None:
    document = committed(name)
    schemes = document["components"]["securitySchemes"]
    assert schemes["dcosToken"] == {
        **schemes["dcosToken"],
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
    }
    assert schemes["bearer"]["scheme"] == "bearer"
    assert schemes["authCookie"]["name"] == "dcos-acs-auth-cookie"
    public = set()
    for method, path, op in operations(document):
        matched = match_route(sample_path(path))
        if matched is not None and isinstance(matched.rule.requirement, Public):
            assert op["security"] == [], f"the route table makes {path} public"
        if op["security"] == []:
            public.add((method, path))
            assert "401" not in op["responses"] or path.endswith("/login"), path
        else:
            assert op["security"] == SECURED, path
            assert "401" in op["responses"], path
    assert public == (PUBLIC if name == "gateway.json" else set())


def test_the_iam_api_is_documented_with_its_bodies(gateway: dict[str, Any]) -> None:
    paths = gateway["paths"]
    login = paths["/acs/api/v1/auth/login"]["post"]
    body = login["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/LoginBody"}
    assert login["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/AuthToken"
    }
    schemas = gateway["components"]["schemas"]
    assert set(schemas["LoginBody"]["properties"]) == {"uid", "password", "token"}
    assert schemas["LoginBody"]["additionalProperties"] is False
    for path, method in [
        ("/acs/api/v1/users", "get"),
        ("/acs/api/v1/users/{uid}", "put"),
        ("/acs/api/v1/groups/{gid}/users/{uid}", "put"),
        ("/acs/api/v1/acls/{rid}/users/{uid}/{action}", "put"),
        ("/acs/api/v1/acls/{rid}/groups/{gid}/{action}", "delete"),
        ("/acs/api/v1/auth/jwks", "get"),
    ]:
        assert method in paths[path], (method, path)
    create = paths["/acs/api/v1/users/{uid}"]["put"]
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/UserBody"
    )
    assert set(create["responses"]) >= {"201", "400", "401", "403", "409"}


def _validator(document: dict[str, Any], schema: str) -> jsonschema.Draft202012Validator:
    root = {"$ref": f"#/components/schemas/{schema}", "components": document["components"]}
    return jsonschema.Draft202012Validator(root)


def test_real_iam_answers_match_their_schemas(gateway: dict[str, Any]) -> None:
    service = User("svc", "a service", public_key="-----BEGIN PUBLIC KEY-----\n…\n")
    person = User("alice", "a person", password_hash="x")
    group = Group("ops", "operators")
    rid = "dcos:mesos:agent:task:app_id:/dev"
    held = [
        HeldPermission(rid, "dev tasks", Action.READ),
        HeldPermission(rid, "dev tasks", Action.FULL, gid="ops"),
    ]
    answers = {
        "User": views.user(service),
        "UserList": views.listing([views.user(person), views.user(service)]),
        "Group": views.group(group),
        "GroupList": views.listing([views.group(group)]),
        "Acl": views.acl(Acl(rid, "dev tasks")),
        "AclList": views.listing([views.acl(Acl(rid, "dev tasks"))]),
        "UserGroups": views.memberships("alice", [group]),
        "GroupMembers": views.members("ops", [person]),
        "UserPermissions": views.permissions("alice", held),
        "GroupPermissions": views.group_permissions("ops", held[1:]),
        "AclPermissions": views.acl_permissions(
            rid,
            [Ace(rid, "user", "alice", Action.READ), Ace(rid, "group", "ops", Action.FULL)],
        ),
    }
    for schema, answer in answers.items():
        _validator(gateway, schema).validate(answer)
    with pytest.raises(jsonschema.ValidationError):
        _validator(gateway, "User").validate({"uid": "alice"})  # the schemas do check


def test_real_journal_entries_match_their_schemas(gateway: dict[str, Any]) -> None:
    entry = Entry({"MESSAGE": b"hello", "CONTAINER_ID": b"c1", "BINARY": b"\xff\x00"}, CURSOR)
    _validator(gateway, "JournalEntry").validate(json.loads(entry.json()))
    event = FileEventEncoder(file="stdout").encode([entry]).decode()
    data = next(line for line in event.splitlines() if line.startswith("data: "))
    _validator(gateway, "TaskFileEvent").validate(json.loads(data.removeprefix("data: ")))
    with pytest.raises(jsonschema.ValidationError):
        _validator(gateway, "JournalEntry").validate({"fields": {}})


def test_a_new_route_is_picked_up_and_can_say_it_is_a_reading() -> None:
    app = create_app(GatewaySettings.model_construct())

    @app.get(
        "/system/v1/logs/v9/thing/{name}/range/", openapi_extra={"x-logway-reading": "v1-range"}
    )
    async def thing_range(name: str, limit: int = Query(0)) -> Response:
        raise NotImplementedError

    @app.get("/system/v1/logs/v9/other/{name}")
    async def other(name: str) -> Response:
        raise NotImplementedError

    document = gateway_document(app)
    validate(document, cls=OpenAPIV31SpecValidator)
    marked = document["paths"]["/system/v1/logs/v9/thing/{name}/range/"]["get"]
    assert list(marked["responses"]["200"]["content"]) == LOG_MEDIA
    assert marked["security"] == SECURED
    assert {"400", "401", "403", "503"} <= set(marked["responses"])
    names = [p.get("name") or p["$ref"].rsplit("/", 1)[1] for p in marked["parameters"]]
    assert names.count("limit") == 1  # declared by the route, not added twice
    assert {"filter", "cursor", "skip_prev"} <= set(names)
    unmarked = document["paths"]["/system/v1/logs/v9/other/{name}"]["get"]
    assert unmarked["security"] == SECURED
    assert "x-logway-reading" not in unmarked
    assert {"401", "403"} <= set(unmarked["responses"])
