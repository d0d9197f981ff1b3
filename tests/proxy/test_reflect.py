"""What the node sees, and what the client gets back, through the gateway under test
(Admin Router harness cases, dcos-logs-api §6.2)."""

from __future__ import annotations

import http.cookies
import time

import httpx
import orjson
import pytest

from tests.proxy.conftest import Gateway
from tests.proxy.gateway_app import TOKEN, UID
from tests.proxy.harness import raw_get
from tests.proxy.upstreams import Reflector

S1 = "de1baf83-c36c-4d23-9cb0-f89f596cd6ab-S1"


@pytest.fixture
def agent(gateway: Gateway, reflector: tuple[str, Reflector]) -> tuple[Gateway, Reflector]:
    base, app = reflector
    gateway.nodes[S1] = base
    return gateway, app


def via(
    gateway: Gateway,
    rest: str,
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
    *,
    source: str = "127.0.0.1",
) -> httpx.Response:
    """GET through the gateway's agent route, from the client address `source`."""
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(transport=transport, timeout=10) as client:
        return client.get(f"{gateway.base}/system/v1/agent/{S1}/logs{rest}", headers=headers)


def seen(response: httpx.Response) -> dict[str, object]:
    assert response.status_code == 200, response.text
    data: dict[str, object] = orjson.loads(response.content)
    return data


def headers_of(data: dict[str, object]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in data["headers"]:  # type: ignore[attr-defined]
        out.setdefault(name, []).append(value)
    return out


def test_case_1_path_query_http11_and_forwarded_headers(agent: tuple[Gateway, Reflector]) -> None:
    gateway, _ = agent
    data = seen(via(gateway, "/foo/bar?key=value&var=num"))
    assert data["method"] == "GET"
    assert data["path"] == "/system/v1/logs/foo/bar"
    assert data["query"] == "key=value&var=num"
    assert data["http_version"] == "1.1"
    headers = headers_of(data)
    assert "connection" not in headers
    assert headers["x-forwarded-for"] == ["127.0.0.1"]
    assert headers["x-forwarded-proto"] == ["http"]
    assert headers["x-real-ip"] == ["127.0.0.1"]
    assert headers["host"] == [gateway.nodes[S1].removeprefix("http://")]


@pytest.mark.parametrize(
    ("rest", "upstream"),
    [
        ("/", "/system/v1/logs/"),
        ("", "/system/v1/logs"),
        ("/v1/range/", "/system/v1/logs/v1/range/"),
    ],
)
def test_case_2_trailing_slash_kept(
    agent: tuple[Gateway, Reflector], rest: str, upstream: str
) -> None:
    gateway, _ = agent
    assert seen(via(gateway, rest))["path"] == upstream


def test_query_string_is_forwarded_byte_for_byte(agent: tuple[Gateway, Reflector]) -> None:
    gateway, _ = agent
    query = (
        "cursor=s%3Dab%3Bi%3D1f&filter=K:a&filter=STREAM:STDERR&skip_prev=10&x=%2F..%2F&e=%C3%A9"
    )
    status, body = raw_get(gateway.base, f"/system/v1/agent/{S1}/logs/v1/range/?{query}")
    assert status == 200
    assert f'"query": "{query}"'.encode() in body


def test_case_5_dcos_cookies_are_removed_others_kept(agent: tuple[Gateway, Reflector]) -> None:
    gateway, _ = agent
    only_dcos = {"cookie": "dcos-acs-auth-cookie=tok; dcos-acs-info-cookie=info"}
    assert "cookie" not in headers_of(seen(via(gateway, "/foo", headers=only_dcos)))
    mixed = {
        "cookie": "dcos-acs-auth-cookie=tok; some-random-cookie=some-random-value; "
        "dcos-acs-info-cookie=info"
    }
    cookies = headers_of(seen(via(gateway, "/foo", headers=mixed)))["cookie"]
    assert len(cookies) == 1
    parsed = http.cookies.SimpleCookie(cookies[0])
    assert {k: v.value for k, v in parsed.items()} == {"some-random-cookie": "some-random-value"}


def test_case_6_accept_encoding_never_reaches_the_node(agent: tuple[Gateway, Reflector]) -> None:
    gateway, _ = agent
    headers = headers_of(seen(via(gateway, "/foo", headers={"accept-encoding": "gzip"})))
    assert "accept-encoding" not in headers


def test_credentials_and_forwarding_headers_are_replaced(agent: tuple[Gateway, Reflector]) -> None:
    """From a client uvicorn does not trust as a proxy (only 127.0.0.1 is, by default), every
    forwarding header is the gateway's own."""
    gateway, _ = agent
    sent = [
        ("authorization", "token=the-callers-own-jwt"),
        ("x-forwarded-for", "6.6.6.6"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "evil.example"),
        ("forwarded", "for=6.6.6.6"),
        ("x-real-ip", "6.6.6.6"),
        ("x-logway-uid", "root"),
        ("x-remote-user", "root"),
        ("proxy-authorization", "Basic eA=="),
        ("connection", "close, X-Secret"),
        ("x-secret", "hop-by-hop because Connection names it"),
        ("te", "trailers"),
        ("upgrade", "websocket"),
        ("accept", "text/event-stream"),
        ("last-event-id", "s=abc"),
        ("cache-control", "no-cache"),
        ("x-accel-buffering", "no"),
        ("user-agent", "dcos-cli/0.6"),
    ]
    headers = headers_of(seen(via(gateway, "/foo", headers=sent, source="127.0.0.3")))
    assert headers["authorization"] == [f"token={TOKEN}"]
    assert headers["x-logway-uid"] == [UID]
    assert headers["x-forwarded-for"] == ["127.0.0.3"]
    assert headers["x-real-ip"] == ["127.0.0.3"]
    assert headers["x-forwarded-proto"] == ["http"]
    for gone in (
        "x-forwarded-host",
        "forwarded",
        "x-remote-user",
        "proxy-authorization",
        "connection",
        "x-secret",
        "te",
        "upgrade",
    ):
        assert gone not in headers
    assert headers["accept"] == ["text/event-stream"]
    assert headers["last-event-id"] == ["s=abc"]
    assert headers["cache-control"] == ["no-cache"]
    assert headers["x-accel-buffering"] == ["no"]
    assert headers["user-agent"] == ["dcos-cli/0.6"]


def test_behind_a_trusted_proxy_the_resolved_client_is_forwarded_alone(
    agent: tuple[Gateway, Reflector],
) -> None:
    """127.0.0.1 is uvicorn's default trusted proxy: it resolves the client from the chain, and
    the node gets that one address, not the chain a client could have started."""
    gateway, _ = agent
    sent = {"x-forwarded-for": "6.6.6.6, 10.1.1.1", "x-forwarded-proto": "https"}
    headers = headers_of(seen(via(gateway, "/foo", headers=sent)))
    assert headers["x-forwarded-for"] == ["10.1.1.1"]
    assert headers["x-real-ip"] == ["10.1.1.1"]
    assert headers["x-forwarded-proto"] == ["https"]


def test_case_12_response_headers_allow_listed(agent: tuple[Gateway, Reflector]) -> None:
    gateway, _ = agent
    response = via(gateway, "/foo/bar")
    assert response.headers["x-accel-buffering"] == "TEST"
    assert response.headers["x-journal-skip-next"] == "3"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["content-type"] == "application/json"
    for gone in ("set-cookie", "x-node-internal", "keep-alive", "x-hop"):
        assert gone not in response.headers


def test_204_stays_204_without_a_body(agent: tuple[Gateway, Reflector]) -> None:
    gateway, _ = agent
    response = via(gateway, "/status/204")
    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["x-journal-skip-next"] == "3"


def test_head_is_forwarded_and_answered_without_a_body(agent: tuple[Gateway, Reflector]) -> None:
    gateway, app = agent
    response = httpx.head(f"{gateway.base}/system/v1/agent/{S1}/logs/foo", timeout=10)
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["x-accel-buffering"] == "TEST"
    assert app.requests[-1]["method"] == "HEAD"


@pytest.mark.parametrize(
    ("where", "location"),
    [
        ("inside", "/system/v1/logs/elsewhere"),
        ("outside", None),
        ("protocol-relative", None),
    ],
)
def test_redirects_keep_their_status_but_never_an_internal_address(
    agent: tuple[Gateway, Reflector], where: str, location: str | None
) -> None:
    gateway, _ = agent
    response = via(gateway, f"/redirect/{where}")
    assert response.status_code == 307
    assert response.headers.get("location") == location


def test_node_refusing_the_gateway_credential_is_a_502_not_a_login_prompt(
    agent: tuple[Gateway, Reflector],
) -> None:
    gateway, _ = agent
    response = via(gateway, "/status/401")
    assert response.status_code == 502
    assert "www-authenticate" not in response.headers
    assert response.json() == {
        "error": "the node refused the gateway's credential",
        "node": S1,
    }


@pytest.mark.parametrize(
    "target",
    [
        "/../../master/state",
        "/v1/range/..%2F..%2Fmaster",
        "/v1/%2e%2e/%2E%2E/x",
        "/v1/a%2Fb",
        "/v1//range/",
        "/v1/range%5C..%5Cx",
        "/v1/a%252Fb",
        "/v1/range/@evil.example",
        "/v1/range/%00",
    ],
)
def test_paths_that_could_leave_the_prefix_are_400(
    agent: tuple[Gateway, Reflector], target: str
) -> None:
    gateway, app = agent
    status, _ = raw_get(gateway.base, f"/system/v1/agent/{S1}/logs{target}")
    assert status == 400
    assert app.requests == []


def test_upstream_down_is_a_502_json_naming_the_node(gateway: Gateway, closed_port: str) -> None:
    gateway.nodes["S9"] = closed_port
    before = gateway.metrics.upstream_errors["connect"]
    response = httpx.get(gateway.url("S9", "/v1/range/"), timeout=10)
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": "cannot connect to the node's log reader", "node": "S9"}
    assert gateway.metrics.upstream_errors["connect"] == before + 1


def test_unresolvable_node_is_a_502(gateway: Gateway) -> None:
    gateway.nodes["S8"] = "http://node-that-does-not-exist.invalid:61001"
    response = httpx.get(gateway.url("S8", "/v1/range/"), timeout=10)
    assert response.status_code == 502
    assert response.json()["node"] == "S8"


def test_connect_timeout_is_a_504_json_naming_the_node(gateway: Gateway, blackhole: str) -> None:
    gateway.nodes["S7"] = blackhole
    before = gateway.metrics.upstream_errors["timeout"]
    started = time.monotonic()
    response = httpx.get(gateway.url("S7", "/v1/range/"), timeout=10)
    assert response.status_code == 504
    assert response.json() == {
        "error": "timed out connecting to the node's log reader",
        "node": "S7",
    }
    assert time.monotonic() - started < 3
    assert gateway.metrics.upstream_errors["timeout"] == before + 1
