"""Users, service accounts, groups and memberships (their route table rules: superuser)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.authn import KeyLoadError
from app.core.errors import BadRequest
from app.iam import names, views
from app.iam.bodies import DescriptionBody, UserBody, read_body
from app.iam.deps import IamDep, admitted
from app.iam.passwords import hash_password
from app.iam.records import Group, User
from app.iam.service import Iam
from app.iam.tokens import is_iam_key, service_public_key

CREATED = 201
NO_CONTENT = 204


router = APIRouter(dependencies=[Depends(admitted)])


async def _password_hash(iam: Iam, password: str | None) -> str | None:
    if password is None:
        return None
    log2_n = iam.settings.scrypt_log2_n
    return await asyncio.to_thread(hash_password, password, log2_n=log2_n)


def _public_key(iam: Iam, pem: str | None) -> str | None:
    if pem is None:
        return None
    try:
        key = service_public_key(pem)
    except KeyLoadError as exc:
        raise BadRequest(f"public_key: {exc}", parameter="public_key") from None
    if is_iam_key(key, iam.keys):
        raise BadRequest("public_key: that is the IAM's own signing key")
    return pem.strip() + "\n"


# Users and service accounts


@router.get("/users")
async def list_users(request: Request, iam: IamDep) -> Response:
    kind = request.query_params.get("type")
    # As documented (openapi: enum ["service"]); anything else is a 400 (issue 12 §6).
    if kind not in (None, "service"):
        raise BadRequest("type: must be 'service' (or absent, for users)", parameter="type")
    users = await iam.store.list_users(services=kind == "service")
    return JSONResponse(views.listing([views.user(u) for u in users]))


@router.put("/users/{uid}")
async def create_user(uid: str, request: Request, iam: IamDep) -> Response:
    uid = names.uid(uid)
    body = await read_body(request, UserBody)
    if body.password is not None and body.public_key is not None:
        raise BadRequest("body: a user has a password or a public_key, not both")
    user = User(
        uid,
        body.description or "",
        password_hash=await _password_hash(iam, body.password),
        public_key=_public_key(iam, body.public_key),
    )
    await iam.store.create_user(user)
    return Response(status_code=CREATED)


@router.get("/users/{uid}")
async def get_user(uid: str, iam: IamDep) -> Response:
    return JSONResponse(views.user(await iam.store.get_user(names.uid(uid))))


@router.patch("/users/{uid}")
async def update_user(uid: str, request: Request, iam: IamDep) -> Response:
    uid = names.uid(uid)
    body = await read_body(request, UserBody)
    if body.description is None and body.password is None and body.public_key is None:
        raise BadRequest("body: nothing to update (description, password or public_key)")
    await iam.store.update_user(
        uid,
        description=body.description,
        password_hash=await _password_hash(iam, body.password),
        public_key=_public_key(iam, body.public_key),
    )
    return Response(status_code=NO_CONTENT)


@router.delete("/users/{uid}")
async def delete_user(uid: str, iam: IamDep) -> Response:
    await iam.store.delete_user(names.uid(uid))
    return Response(status_code=NO_CONTENT)


@router.get("/users/{uid}/groups")
async def user_groups(uid: str, iam: IamDep) -> Response:
    uid = names.uid(uid)
    return JSONResponse(views.memberships(uid, await iam.store.groups_of(uid)))


@router.get("/users/{uid}/permissions")
async def user_permissions(uid: str, iam: IamDep) -> Response:
    uid = names.uid(uid)
    return JSONResponse(views.permissions(uid, await iam.store.acls.held_by_user(uid)))


# Groups and memberships


@router.get("/groups")
async def list_groups(iam: IamDep) -> Response:
    groups = await iam.store.list_groups()
    return JSONResponse(views.listing([views.group(g) for g in groups]))


@router.put("/groups/{gid}")
async def create_group(gid: str, request: Request, iam: IamDep) -> Response:
    gid = names.gid(gid)
    body = await read_body(request, DescriptionBody)
    await iam.store.create_group(Group(gid, body.description or ""))
    return Response(status_code=CREATED)


@router.get("/groups/{gid}")
async def get_group(gid: str, iam: IamDep) -> Response:
    return JSONResponse(views.group(await iam.store.get_group(names.gid(gid))))


@router.patch("/groups/{gid}")
async def update_group(gid: str, request: Request, iam: IamDep) -> Response:
    gid = names.gid(gid)
    body = await read_body(request, DescriptionBody)
    if body.description is None:
        raise BadRequest("description: required", parameter="description")
    await iam.store.update_group(gid, description=body.description)
    return Response(status_code=NO_CONTENT)


@router.delete("/groups/{gid}")
async def delete_group(gid: str, iam: IamDep) -> Response:
    await iam.store.delete_group(names.gid(gid))
    return Response(status_code=NO_CONTENT)


@router.get("/groups/{gid}/users")
async def group_members(gid: str, iam: IamDep) -> Response:
    gid = names.gid(gid)
    return JSONResponse(views.members(gid, await iam.store.members(gid)))


@router.put("/groups/{gid}/users/{uid}")
async def add_member(gid: str, uid: str, iam: IamDep) -> Response:
    await iam.store.add_member(names.gid(gid), names.uid(uid))
    return Response(status_code=NO_CONTENT)


@router.delete("/groups/{gid}/users/{uid}")
async def remove_member(gid: str, uid: str, iam: IamDep) -> Response:
    await iam.store.remove_member(names.gid(gid), names.uid(uid))
    return Response(status_code=NO_CONTENT)


@router.get("/groups/{gid}/permissions")
async def group_permissions(gid: str, iam: IamDep) -> Response:
    gid = names.gid(gid)
    return JSONResponse(views.group_permissions(gid, await iam.store.acls.held_by_group(gid)))
