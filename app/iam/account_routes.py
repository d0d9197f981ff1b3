"""Users, service accounts, groups and memberships (superuser only)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.authn import KeyLoadError
from app.core.errors import BadRequest
from app.iam import names, views
from app.iam.bodies import DescriptionBody, UserBody, read_body
from app.iam.guard import Guard
from app.iam.passwords import hash_password
from app.iam.records import Group, User
from app.iam.service import Iam
from app.iam.tokens import is_iam_key, service_public_key

CREATED = 201
NO_CONTENT = 204


def account_routes(iam: Iam, guard: Guard) -> APIRouter:
    router = APIRouter(dependencies=[Depends(guard.superuser)])
    store = iam.store

    async def password_hash(password: str | None) -> str | None:
        if password is None:
            return None
        log2_n = iam.settings.scrypt_log2_n
        return await asyncio.to_thread(hash_password, password, log2_n=log2_n)

    def public_key(pem: str | None) -> str | None:
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
    async def list_users(request: Request) -> Response:
        kind = request.query_params.get("type")
        # As documented (openapi: enum ["service"]); anything else is a 400 (issue 12 §6).
        if kind not in (None, "service"):
            raise BadRequest("type: must be 'service' (or absent, for users)", parameter="type")
        users = await store.list_users(services=kind == "service")
        return JSONResponse(views.listing([views.user(u) for u in users]))

    @router.put("/users/{uid}")
    async def create_user(uid: str, request: Request) -> Response:
        uid = names.uid(uid)
        body = await read_body(request, UserBody)
        if body.password is not None and body.public_key is not None:
            raise BadRequest("body: a user has a password or a public_key, not both")
        user = User(
            uid,
            body.description or "",
            password_hash=await password_hash(body.password),
            public_key=public_key(body.public_key),
        )
        await store.create_user(user)
        return Response(status_code=CREATED)

    @router.get("/users/{uid}")
    async def get_user(uid: str) -> Response:
        return JSONResponse(views.user(await store.get_user(names.uid(uid))))

    @router.patch("/users/{uid}")
    async def update_user(uid: str, request: Request) -> Response:
        uid = names.uid(uid)
        body = await read_body(request, UserBody)
        if body.description is None and body.password is None and body.public_key is None:
            raise BadRequest("body: nothing to update (description, password or public_key)")
        await store.update_user(
            uid,
            description=body.description,
            password_hash=await password_hash(body.password),
            public_key=public_key(body.public_key),
        )
        return Response(status_code=NO_CONTENT)

    @router.delete("/users/{uid}")
    async def delete_user(uid: str) -> Response:
        await store.delete_user(names.uid(uid))
        return Response(status_code=NO_CONTENT)

    @router.get("/users/{uid}/groups")
    async def user_groups(uid: str) -> Response:
        uid = names.uid(uid)
        return JSONResponse(views.memberships(uid, await store.groups_of(uid)))

    @router.get("/users/{uid}/permissions")
    async def user_permissions(uid: str) -> Response:
        uid = names.uid(uid)
        return JSONResponse(views.permissions(uid, await store.acls.held_by_user(uid)))

    # Groups and memberships

    @router.get("/groups")
    async def list_groups() -> Response:
        groups = await store.list_groups()
        return JSONResponse(views.listing([views.group(g) for g in groups]))

    @router.put("/groups/{gid}")
    async def create_group(gid: str, request: Request) -> Response:
        gid = names.gid(gid)
        body = await read_body(request, DescriptionBody)
        await store.create_group(Group(gid, body.description or ""))
        return Response(status_code=CREATED)

    @router.get("/groups/{gid}")
    async def get_group(gid: str) -> Response:
        return JSONResponse(views.group(await store.get_group(names.gid(gid))))

    @router.patch("/groups/{gid}")
    async def update_group(gid: str, request: Request) -> Response:
        gid = names.gid(gid)
        body = await read_body(request, DescriptionBody)
        if body.description is None:
            raise BadRequest("description: required", parameter="description")
        await store.update_group(gid, description=body.description)
        return Response(status_code=NO_CONTENT)

    @router.delete("/groups/{gid}")
    async def delete_group(gid: str) -> Response:
        await store.delete_group(names.gid(gid))
        return Response(status_code=NO_CONTENT)

    @router.get("/groups/{gid}/users")
    async def group_members(gid: str) -> Response:
        gid = names.gid(gid)
        return JSONResponse(views.members(gid, await store.members(gid)))

    @router.put("/groups/{gid}/users/{uid}")
    async def add_member(gid: str, uid: str) -> Response:
        await store.add_member(names.gid(gid), names.uid(uid))
        return Response(status_code=NO_CONTENT)

    @router.delete("/groups/{gid}/users/{uid}")
    async def remove_member(gid: str, uid: str) -> Response:
        await store.remove_member(names.gid(gid), names.uid(uid))
        return Response(status_code=NO_CONTENT)

    @router.get("/groups/{gid}/permissions")
    async def group_permissions(gid: str) -> Response:
        gid = names.gid(gid)
        return JSONResponse(views.group_permissions(gid, await store.acls.held_by_group(gid)))

    return router
