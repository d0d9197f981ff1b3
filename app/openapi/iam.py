"""The embedded IAM's API (DC/OS IAM compatible, `app.iam`), as OpenAPI.

Its routes read their JSON bodies by hand (after authenticating the caller), so FastAPI
documents neither bodies nor answers: the request schemas come from the pydantic models the
routes validate with (`app.iam.bodies`), the response schemas are those of `app.iam.views`
(tests/openapi checks real views against them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from app.authz.model import Action
from app.iam.bodies import DescriptionBody, LoginBody, UserBody
from app.iam.names import MAX_RID_LENGTH
from app.openapi.routes import path_parameters

Json = dict[str, Any]

BODIES: tuple[type[BaseModel], ...] = (LoginBody, UserBody, DescriptionBody)

# What `app.iam.names` accepts, so that a generated client (and schemathesis' positive data)
# sends only what the IAM takes. A uid or gid: letters, digits and `. _ @ -`, 1-96 (not
# starting with `.`, which a URL path would resolve as a dot segment).
ID_PATTERN = "^[a-zA-Z0-9_@-][a-zA-Z0-9._@-]{0,95}$"
# A canonical resource id (`app.authz.resource`): `dcos:` and lower-case names on `:`, the last
# segment optionally a `/`-separated path (an app id); no empty, `.` or `..` component.
_NAME = "[a-z0-9_-][a-z0-9_.-]*"
RID_PATTERN = f"^dcos(:{_NAME})*:/?{_NAME}(/{_NAME})*$"
_ID = {"type": "string", "pattern": ID_PATTERN, "minLength": 1, "maxLength": 96}
_RID = {"type": "string", "pattern": RID_PATTERN, "maxLength": MAX_RID_LENGTH}


def _string(description: str) -> Json:
    return {"type": "string", "description": description}


def _object(properties: Json, *, optional: tuple[str, ...] = ()) -> Json:
    required = [name for name in properties if name not in optional]
    return {"type": "object", "properties": properties, "required": required}


def _ref(name: str) -> Json:
    return {"$ref": f"#/components/schemas/{name}"}


def _listing(item: str) -> Json:
    return _object({"array": {"type": "array", "items": _ref(item)}})


_ACTIONS = {
    "type": "array",
    "items": _object(
        {
            "name": _ref("Action"),
            "url": _string("The grant's URL (PUT grants, DELETE revokes)."),
        }
    ),
}
_HELD = {
    "rid": _string("The resource id."),
    "description": _string("The ACL's description."),
    "aclurl": _string("The ACL's URL."),
    "actions": _ACTIONS,
}

SCHEMAS: Json = {
    "Action": {"type": "string", "enum": [a.value for a in Action]},
    "AuthToken": _object({"token": _string("A JWT (RS256); send it as `token=<JWT>`.")}),
    "Jwks": _object(
        {
            "keys": {
                "type": "array",
                "items": _object(
                    {name: {"type": "string"} for name in ("kty", "alg", "use", "kid", "n", "e")}
                ),
            }
        }
    ),
    "RotatedKey": _object({"kid": _string("The new signing key's id.")}),
    "PolicyDecision": _object({"allowed": {"type": "boolean"}}),
    "User": _object(
        {
            "uid": {"type": "string"},
            "description": {"type": "string"},
            "url": {"type": "string"},
            "is_remote": {"type": "boolean"},
            "is_service": {"type": "boolean", "description": "A service account (public key)."},
            "provider_type": {"type": "string"},
            "provider_id": {"type": "string"},
            "public_key": _string("A service account's RSA public key (PEM)."),
        },
        optional=("public_key",),
    ),
    "UserList": _listing("User"),
    "Group": _object(
        {"gid": {"type": "string"}, "description": {"type": "string"}, "url": {"type": "string"}}
    ),
    "GroupList": _listing("Group"),
    "Acl": _object(
        {"rid": {"type": "string"}, "description": {"type": "string"}, "url": {"type": "string"}}
    ),
    "AclList": _listing("Acl"),
    "UserGroups": _object(
        {
            "array": {
                "type": "array",
                "items": _object({"membershipurl": {"type": "string"}, "group": _ref("Group")}),
            }
        }
    ),
    "GroupMembers": _object(
        {
            "array": {
                "type": "array",
                "items": _object({"membershipurl": {"type": "string"}, "user": _ref("User")}),
            }
        }
    ),
    "HeldPermission": _object(_HELD),
    "GroupHeldPermission": _object(
        {**_HELD, "gid": {"type": "string"}, "groupurl": {"type": "string"}}
    ),
    "UserPermissions": _object(
        {
            "direct": {"type": "array", "items": _ref("HeldPermission")},
            "groups": {"type": "array", "items": _ref("GroupHeldPermission")},
        }
    ),
    "GroupPermissions": _listing("HeldPermission"),
    "AclPermissions": _object(
        {
            "users": {
                "type": "array",
                "items": _object(
                    {"uid": {"type": "string"}, "userurl": {"type": "string"}, "actions": _ACTIONS}
                ),
            },
            "groups": {
                "type": "array",
                "items": _object(
                    {
                        "gid": {"type": "string"},
                        "groupurl": {"type": "string"},
                        "actions": _ACTIONS,
                    }
                ),
            },
        }
    ),
}


@dataclass(frozen=True, slots=True)
class IamOp:
    summary: str
    status: str = "200"  # the success status
    answer: str | None = None  # its JSON body's schema
    body: type[BaseModel] | None = None
    body_schema: str | None = None  # when not the model's own (a PATCH's)
    errors: tuple[str, ...] = ("BadRequest", "NotFound")
    description: str | None = None


_CREATE = ("BadRequest", "NotFound", "Conflict")  # 404: a path no route serves
_GUARDED = ("BadRequest", "NotFound", "Conflict")
_ADMIN_OPS: dict[str, IamOp] = {
    "list_users": IamOp(
        "Users, or service accounts with `type=service`", answer="UserList", errors=("BadRequest",)
    ),
    "create_user": IamOp(
        "Create a user (password) or a service account (public_key)",
        status="201",
        body=UserBody,
        errors=_CREATE,
    ),
    "get_user": IamOp("A user or service account", answer="User"),
    "update_user": IamOp(
        "Change a description, password or public key",
        status="204",
        body=UserBody,
        body_schema="UserChange",
        errors=("BadRequest", "NotFound", "Conflict"),
    ),
    # 409: the change would leave no superuser (app/iam/store.py SOME_SUPERUSER).
    "delete_user": IamOp("Delete a user or service account", status="204", errors=_GUARDED),
    "user_groups": IamOp("The groups a user is in", answer="UserGroups"),
    "user_permissions": IamOp(
        "What a user holds, directly and through groups", answer="UserPermissions"
    ),
    "list_groups": IamOp("Groups", answer="GroupList", errors=()),
    "create_group": IamOp("Create a group", status="201", body=DescriptionBody, errors=_CREATE),
    "get_group": IamOp("A group", answer="Group"),
    "update_group": IamOp(
        "Change a group's description",
        status="204",
        body=DescriptionBody,
        body_schema="DescriptionChange",
    ),
    "delete_group": IamOp("Delete a group", status="204", errors=_GUARDED),
    "group_members": IamOp("A group's members", answer="GroupMembers"),
    "add_member": IamOp(
        "Add a user to a group", status="204", errors=("BadRequest", "NotFound", "Conflict")
    ),
    "remove_member": IamOp("Remove a user from a group", status="204", errors=_GUARDED),
    "group_permissions": IamOp("What a group holds", answer="GroupPermissions"),
    "list_acls": IamOp("ACLs", answer="AclList", errors=()),
    "create_acl": IamOp("Create an ACL", status="201", body=DescriptionBody, errors=_CREATE),
    "get_acl": IamOp("An ACL", answer="Acl"),
    "update_acl": IamOp(
        "Change an ACL's description",
        status="204",
        body=DescriptionBody,
        body_schema="DescriptionChange",
    ),
    "delete_acl": IamOp("Delete an ACL and its grants", status="204", errors=_GUARDED),
    "acl_permissions": IamOp("Who holds what on an ACL", answer="AclPermissions"),
    "grant_user": IamOp(
        "Grant a user an action on an ACL",
        status="204",
        errors=("BadRequest", "NotFound", "Conflict"),
    ),
    "revoke_user": IamOp("Revoke a user's action on an ACL", status="204", errors=_GUARDED),
    "grant_group": IamOp(
        "Grant a group an action on an ACL",
        status="204",
        errors=("BadRequest", "NotFound", "Conflict"),
    ),
    "revoke_group": IamOp("Revoke a group's action on an ACL", status="204", errors=_GUARDED),
    "rotate_keys": IamOp(
        "Make a new token signing key",
        answer="RotatedKey",
        errors=("TooManyRequests",),
        description=(
            "The old key stays in the JWKS until the tokens it signed have expired. At most "
            "one rotation a minute, and while fewer than 4 retired keys still verify unexpired "
            "tokens; else 429 with Retry-After."
        ),
    ),
    "policyquery": IamOp(
        "May `uid` do `action` on `rid`?",
        answer="PolicyDecision",
        errors=("BadRequest",),
        description="Admin Router's question to the IAM; an unknown uid holds nothing.",
    ),
}
_PUBLIC_OPS: dict[str, IamOp] = {
    "login": IamOp(
        "Log in with a password, or a service account's login token",
        answer="AuthToken",
        body=LoginBody,
        errors=("BadRequest", "LoginFailed", "TooManyRequests"),
        description=(
            "Give `uid` and either `password` or `token` (a service login JWT the account signed "
            'with its private key: `{"uid": <uid>, "exp": <unix time>}`, RS256). The answer\'s '
            "token is also set as the `dcos-acs-auth-cookie` cookie."
        ),
    ),
    "logout": IamOp("Clear the auth cookie", errors=()),
    "jwks": IamOp("The keys that verify the IAM's tokens", answer="Jwks", errors=()),
}
OPS: dict[str, IamOp] = {**_ADMIN_OPS, **_PUBLIC_OPS}

_PATH_PARAMS = {
    "uid": {
        **_ID,
        "description": "A user's or service account's id: letters, digits and `. _ @ -`.",
    },
    "gid": {**_ID, "description": "A group's id: letters, digits and `. _ @ -`."},
    "rid": {
        **_RID,
        "description": (
            "A resource id, `dcos:`-prefixed (`dcos:adminrouter:ops:system-logs`), lower case; "
            "a `/` in it may be sent as is, as `%2F` or as DC/OS's `%252F`."
        ),
    },
    "action": _ref("Action"),
}
_QUERY: dict[str, list[Json]] = {
    "list_users": [
        {
            "name": "type",
            "in": "query",
            "schema": {"type": "string", "enum": ["service"]},
            "description": "`service`: the service accounts instead of the users.",
        }
    ],
    "policyquery": [
        {"name": name, "in": "query", "required": True, "schema": schema}
        for name, schema in (
            ("rid", {"type": "string", "minLength": 1, "maxLength": 1024}),
            ("uid", {"type": "string", "minLength": 1, "maxLength": 1024}),
            ("action", _ref("Action")),
        )
    ],
}


def operation(name: str, template: str, op: IamOp) -> Json:
    """The IAM operation `name` (its route's function), without security and error entries."""
    parameters = path_parameters(template, _PATH_PARAMS)
    success: Json = {"description": op.summary}
    if op.answer is not None:
        success["content"] = {"application/json": {"schema": _ref(op.answer)}}
    if name == "login":
        success["headers"] = {
            "Set-Cookie": {
                "description": "`dcos-acs-auth-cookie=<JWT>; HttpOnly; SameSite=Strict; Path=/`",
                "schema": {"type": "string"},
            }
        }
    out: Json = {
        "operationId": name,
        "summary": op.summary,
        "parameters": parameters + _QUERY.get(name, []),
        "responses": {op.status: success},
    }
    if op.description:
        out["description"] = op.description
    if op.body is not None:
        out["requestBody"] = {
            "required": name == "login" or op.body_schema is not None,
            "content": {"application/json": {"schema": _ref(op.body_schema or op.body.__name__)}},
        }
    return out


def body_schemas() -> Json:
    """The models' schemas, with what the routes check beyond them (`app.iam.names`, the
    login's one credential, a change that changes something)."""
    schemas = {model.__name__: model.model_json_schema() for model in BODIES}
    login = schemas["LoginBody"]
    login["properties"]["uid"].update(_ID)
    for name in ("password", "token"):  # a string when given: null is "not given"
        login["properties"][name] = _not_null(login["properties"][name])
    # "Exactly one of the two" is said in words: a top-level `oneOf` makes SDK generators
    # (openapi-python-client) give up on the model, and SDKs are this document's users.
    login["description"] = "A login: `uid` with exactly one of `password` or `token`."
    change = schemas["UserBody"]
    change["not"] = {"required": ["password", "public_key"]}  # a person or a service account
    schemas["UserChange"] = {
        **{k: v for k, v in change.items() if k != "not"},
        "title": "UserChange",
        "properties": {k: _not_null(v) for k, v in change["properties"].items()},
        "minProperties": 1,
        "description": "A PATCH of a user: at least one of the three.",
    }
    described = schemas["DescriptionBody"]
    schemas["DescriptionChange"] = {
        **described,
        "title": "DescriptionChange",
        "properties": {k: _not_null(v) for k, v in described["properties"].items()},
        "required": ["description"],
        "description": "A PATCH of a group or an ACL: its new description.",
    }
    return schemas


def _not_null(schema: Json) -> Json:
    """`anyOf: [X, null]` (pydantic's `str | None`) as X, keeping the rest."""
    options = [o for o in schema.get("anyOf", []) if o.get("type") != "null"]
    if len(options) != 1:
        return schema
    rest = {k: v for k, v in schema.items() if k not in ("anyOf", "default")}
    return {**options[0], **rest}
