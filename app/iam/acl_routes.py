"""ACLs, their entries and the policy query (their route table rules: superuser; the policy
query also for holders of `dcos:iam:policyquery` `read`).

Resource ids may contain `/` (`dcos:mesos:agent:task:app_id:/dev/app`), so they are matched as
`{rid:path}`, and the longer routes are declared first.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.authz.model import PrincipalKind
from app.core.errors import BadRequest
from app.iam import names, views
from app.iam.bodies import DescriptionBody, read_body
from app.iam.deps import AuthorizerDep, IamDep, admitted
from app.iam.records import Ace, Acl

CREATED = 201
NO_CONTENT = 204
MAX_QUERY_VALUE = 1024


router = APIRouter(dependencies=[Depends(admitted)])
policy_router = APIRouter(dependencies=[Depends(admitted)])


def _ace(rid: str, kind: PrincipalKind, principal: str, action: str) -> Ace:
    check = names.uid if kind is PrincipalKind.USER else names.gid
    return Ace(names.rid(rid), kind, check(principal), names.action(action))


@router.put("/acls/{rid:path}/users/{uid}/{action}")
async def grant_user(rid: str, uid: str, action: str, iam: IamDep) -> Response:
    await iam.store.acls.grant(_ace(rid, PrincipalKind.USER, uid, action))
    return Response(status_code=NO_CONTENT)


@router.delete("/acls/{rid:path}/users/{uid}/{action}")
async def revoke_user(rid: str, uid: str, action: str, iam: IamDep) -> Response:
    await iam.store.acls.revoke(_ace(rid, PrincipalKind.USER, uid, action))
    return Response(status_code=NO_CONTENT)


@router.put("/acls/{rid:path}/groups/{gid}/{action}")
async def grant_group(rid: str, gid: str, action: str, iam: IamDep) -> Response:
    await iam.store.acls.grant(_ace(rid, PrincipalKind.GROUP, gid, action))
    return Response(status_code=NO_CONTENT)


@router.delete("/acls/{rid:path}/groups/{gid}/{action}")
async def revoke_group(rid: str, gid: str, action: str, iam: IamDep) -> Response:
    await iam.store.acls.revoke(_ace(rid, PrincipalKind.GROUP, gid, action))
    return Response(status_code=NO_CONTENT)


@router.get("/acls/{rid:path}/permissions")
async def acl_permissions(rid: str, iam: IamDep) -> Response:
    rid = names.rid(rid)
    return JSONResponse(views.acl_permissions(rid, await iam.store.acls.entries(rid)))


@router.get("/acls")
async def list_acls(iam: IamDep) -> Response:
    return JSONResponse(views.listing([views.acl(a) for a in await iam.store.acls.list_all()]))


@router.put("/acls/{rid:path}")
async def create_acl(rid: str, request: Request, iam: IamDep) -> Response:
    rid = names.rid(rid)
    body = await read_body(request, DescriptionBody)
    await iam.store.acls.create(Acl(rid, body.description or ""))
    return Response(status_code=CREATED)


@router.get("/acls/{rid:path}")
async def get_acl(rid: str, iam: IamDep) -> Response:
    return JSONResponse(views.acl(await iam.store.acls.get(names.rid(rid))))


@router.patch("/acls/{rid:path}")
async def update_acl(rid: str, request: Request, iam: IamDep) -> Response:
    rid = names.rid(rid)
    body = await read_body(request, DescriptionBody)
    if body.description is None:
        raise BadRequest("description: required", parameter="description")
    await iam.store.acls.update(rid, description=body.description)
    return Response(status_code=NO_CONTENT)


@router.delete("/acls/{rid:path}")
async def delete_acl(rid: str, iam: IamDep) -> Response:
    await iam.store.acls.delete(names.rid(rid))
    return Response(status_code=NO_CONTENT)


@policy_router.get("/internal/policyquery")
async def policyquery(request: Request, authorizer: AuthorizerDep) -> Response:
    """Adminrouter's question: may `uid` do `action` on `rid`? `{"allowed": bool}`.

    `rid` and `uid` go to the authorizer as given: it is the judge of malformed rids (and
    denies them), and an unknown or malformed uid holds nothing. A 400 here would reach the
    gateway as "IAM unavailable" instead of a deny."""
    query = request.query_params
    rid, uid = _required(query.get("rid"), "rid"), _required(query.get("uid"), "uid")
    action = names.action(query.get("action", ""))
    decision = await authorizer.authorize(uid, rid, action)
    return JSONResponse({"allowed": decision.allowed})


def _required(value: str | None, field: str) -> str:
    if not value or len(value) > MAX_QUERY_VALUE:
        raise BadRequest(
            f"{field}: required, at most {MAX_QUERY_VALUE} characters", parameter=field
        )
    return value
