"""`/acs/api/v1/*` forwarded to a remote IAM: what reaches the IAM and what comes back. The
IAM is the fake IAM in process, recording each request; the gateway side is the real router
behind ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from app.core.problems import install_error_handlers
from app.gateway.iam_forward import IamForwarder, iam_forward_router
from app.proxy import new_upstream_client
from tests.support.fake_iam import FakeIam


def ok(_: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"ok": True})


@pytest.fixture
def iam() -> FakeIam:
    return FakeIam(other=ok)  # every path here is under /base: none is the IAM's own


@pytest.fixture
async def gateway(iam: FakeIam) -> AsyncIterator[httpx.AsyncClient]:
    async with new_upstream_client(transport=iam.transport()) as upstream:
        app = FastAPI()
        install_error_handlers(app)
        app.include_router(iam_forward_router(IamForwarder("http://iam.test:8101/base", upstream)))
        transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 4711))
        async with httpx.AsyncClient(transport=transport, base_url="https://gw.test") as client:
            yield client


async def test_path_and_query_reach_the_iam_byte_for_byte(
    gateway: httpx.AsyncClient, iam: FakeIam
) -> None:
    target = b"/acs/api/v1/acls/dcos:mesos:agent:task:app_id:%2Fdev/users/a%40b/read?x=%2F&y=a+b"
    r = await gateway.put(target.decode())
    assert r.status_code == 200, r.text
    assert iam.last.method == "PUT"
    assert iam.last.url.host == "iam.test"
    assert iam.last.url.port == 8101
    assert iam.last.url.raw_path == b"/base" + target


async def test_body_and_credentials_go_other_headers_stay(
    gateway: httpx.AsyncClient, iam: FakeIam
) -> None:
    r = await gateway.patch(
        "/acs/api/v1/users/alice",
        content=b'{"description": "x"}',
        headers={
            "Content-Type": "application/json",
            "Authorization": "token=caller",
            "Cookie": "a=1; dcos-acs-auth-cookie=cookie-token; dcos-acs-info-cookie=info",
            "X-Forwarded-For": "6.6.6.6",
            "X-Real-IP": "6.6.6.6",
            "X-Logway-Uid": "admin",
            "Proxy-Authorization": "Basic x",
            "TE": "trailers",
            "X-Custom": "nope",
            "Origin": "https://gw.test",
        },
    )
    assert r.status_code == 200
    sent = iam.last
    assert sent.content == b'{"description": "x"}'
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["authorization"] == "token=caller"
    assert sent.headers["cookie"] == "dcos-acs-auth-cookie=cookie-token"
    assert sent.headers["origin"] == "https://gw.test"
    assert sent.headers["host"] == "iam.test:8101"
    # Replaced, not appended to: the client address and scheme the gateway saw.
    assert sent.headers.get_list("x-forwarded-for") == ["203.0.113.7"]
    assert sent.headers["x-real-ip"] == "203.0.113.7"
    assert sent.headers["x-forwarded-proto"] == "https"
    for name in ("x-logway-uid", "proxy-authorization", "te", "x-custom", "accept-encoding"):
        assert name not in sent.headers, name


async def test_headers_named_in_connection_are_hop_by_hop(
    gateway: httpx.AsyncClient, iam: FakeIam
) -> None:
    headers = {
        "Connection": "Authorization, Cookie",
        "Authorization": "token=t",
        "Cookie": "dcos-acs-auth-cookie=c",
    }
    assert (await gateway.get("/acs/api/v1/users", headers=headers)).status_code == 200
    assert "authorization" not in iam.last.headers
    assert "cookie" not in iam.last.headers


async def test_the_iams_answer_comes_back_with_its_cookies(
    gateway: httpx.AsyncClient, iam: FakeIam
) -> None:
    iam.other = lambda _: httpx.Response(
        401,
        headers=[
            ("Content-Type", "text/plain"),
            ("WWW-Authenticate", "acsjwt"),
            ("Set-Cookie", "dcos-acs-auth-cookie=t; HttpOnly; Path=/"),
            ("Set-Cookie", "other=1; Path=/"),
            ("Retry-After", "3"),
            ("Server", "iam/1.0"),
            ("X-Internal", "10.0.0.5"),
            ("Connection", "X-Hop"),
            ("X-Hop", "1"),
            ("Location", "http://10.0.0.5:8101/elsewhere"),
        ],
        content=b"Login failed\n",
    )
    r = await gateway.post("/acs/api/v1/auth/login", json={"uid": "a", "password": "b"})
    assert r.status_code == 401
    assert r.content == b"Login failed\n"
    assert r.headers["www-authenticate"] == "acsjwt"
    assert r.headers.get_list("set-cookie") == [
        "dcos-acs-auth-cookie=t; HttpOnly; Path=/",
        "other=1; Path=/",
    ]
    assert r.headers["retry-after"] == "3"
    for name in ("server", "x-internal", "x-hop", "location"):
        assert name not in r.headers, name


async def test_a_hostless_location_is_kept(gateway: httpx.AsyncClient, iam: FakeIam) -> None:
    iam.other = lambda _: httpx.Response(307, headers={"Location": "/acs/api/v1/users/"})
    r = await gateway.get("/acs/api/v1/users")
    assert r.status_code == 307
    assert r.headers["location"] == "/acs/api/v1/users/"


@pytest.mark.parametrize(
    "target",
    # Plain `..` and `.` too, but httpx resolves them before sending: test_remote_iam.py
    # sends those over a raw connection.
    [
        b"/acs/api/v1/%2e%2e/%2E%2E/readyz",
        b"/acs/api/v1/%2e/users",
        b"/acs/api/v1/x%2F..%2F..%2Freadyz",
    ],
)
async def test_dot_segments_are_refused_before_the_iam(
    gateway: httpx.AsyncClient, iam: FakeIam, target: bytes
) -> None:
    r = await gateway.get(target.decode())
    assert r.status_code == 400
    assert "segments" in r.text
    assert iam.seen == []


async def test_an_unreachable_iam_is_502_and_a_slow_one_504(
    gateway: httpx.AsyncClient, iam: FakeIam
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    def stall(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    iam.other = refuse
    r = await gateway.get("/acs/api/v1/auth/jwks")
    assert (r.status_code, r.text) == (502, "cannot reach the IAM\n")
    iam.other = stall
    r = await gateway.get("/acs/api/v1/auth/jwks")
    assert (r.status_code, r.text) == (504, "the IAM did not answer in time\n")


async def test_an_oversized_body_is_refused_here(gateway: httpx.AsyncClient, iam: FakeIam) -> None:
    r = await gateway.put("/acs/api/v1/users/x", content=b"x" * (1024 * 1024 + 1))
    assert r.status_code == 400
    assert "body" in r.text
    assert iam.seen == []
