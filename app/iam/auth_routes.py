"""Login, logout, JWKS (all public) and key rotation (superuser), as the route table says."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.authn.extract import AUTH_COOKIE
from app.core.errors import BadRequest
from app.iam import names
from app.iam.bodies import LoginBody, read_body
from app.iam.deps import IamDep, admitted, client_address
from app.iam.tokens import IssuedToken

NO_STORE = {"Cache-Control": "no-store"}


router = APIRouter()


@router.post("/auth/login")
async def login(request: Request, iam: IamDep) -> Response:
    body = await read_body(request, LoginBody)
    uid = names.uid(body.uid)
    srcip = client_address(request)
    if (body.password is None) == (body.token is None):
        raise BadRequest("body: give either password or token (service login)")
    if body.password is not None:
        issued = await iam.login.with_password(uid, body.password, srcip=srcip)
    else:
        assert body.token is not None
        issued = await iam.login.with_service_token(uid, body.token, srcip=srcip)
    return _logged_in(request, issued, max_age=iam.issuer.lifetime)


@router.get("/auth/logout")
async def logout(request: Request) -> Response:
    response = Response(status_code=200, headers=NO_STORE)
    response.delete_cookie(
        AUTH_COOKIE,
        path="/",
        secure=_secure(request),
        httponly=True,
        samesite="strict",
    )
    return response


@router.get("/auth/jwks")
async def jwks(iam: IamDep) -> Response:
    return JSONResponse(await iam.jwks())


@router.post("/auth/rotate-keys", dependencies=[Depends(admitted)])
async def rotate_keys(iam: IamDep) -> Response:
    key = await iam.rotate_keys()
    return JSONResponse({"kid": key.kid})


def _logged_in(request: Request, issued: IssuedToken, *, max_age: int) -> Response:
    response = JSONResponse({"token": issued.token}, headers=NO_STORE)
    # HttpOnly: page scripts cannot read it. SameSite=Strict: other sites cannot make a
    # browser send it (the log API streams to browsers via EventSource, cookie-authenticated).
    response.set_cookie(
        AUTH_COOKIE,
        issued.token,
        max_age=max_age,
        path="/",
        secure=_secure(request),
        httponly=True,
        samesite="strict",
    )
    return response


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"
