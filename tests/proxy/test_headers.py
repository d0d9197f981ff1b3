"""Header hygiene as pure functions (security §3 P4-P6, P9, P17)."""

from __future__ import annotations

import pytest

from app.proxy.headers import (
    connection_named,
    filter_cookies,
    keeps_location,
    request_headers,
    response_headers,
)


def h(*pairs: tuple[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.encode(), v.encode()) for k, v in pairs]


def forwarded(*pairs: tuple[str, str], **options: object) -> dict[str, list[str]]:
    kwargs: dict[str, object] = {"client": "10.1.1.1", "scheme": "https", "uid": "alice"}
    kwargs["token"] = "gw-token"
    kwargs.update(options)
    out: dict[str, list[str]] = {}
    for name, value in request_headers(h(*pairs), **kwargs):  # type: ignore[arg-type]
        out.setdefault(name.decode(), []).append(value.decode())
    return out


@pytest.mark.parametrize(
    "name",
    [
        "Connection",
        "Keep-Alive",
        "Proxy-Connection",
        "Proxy-Authorization",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        "Host",
        "Accept-Encoding",
        "Content-Length",
        "Expect",
        "Forwarded",
        "X-Forwarded-Host",
        "X-Forwarded-Port",
        "X-Forwarded-Prefix",
        "X-Remote-User",
        "X-Logway-Anything",
    ],
)
def test_dropped_request_headers(name: str) -> None:
    assert name.lower() not in forwarded((name, "x"))


@pytest.mark.parametrize(
    "name",
    ["Accept", "Last-Event-ID", "Cache-Control", "X-Accel-Buffering", "User-Agent", "X-Custom"],
)
def test_end_to_end_request_headers_pass_unchanged(name: str) -> None:
    assert forwarded((name, "v a l")).get(name.lower()) == ["v a l"]


def test_headers_named_by_connection_are_hop_by_hop() -> None:
    out = forwarded(("Connection", "close, X-Secret"), ("connection", "x-other"), ("X-Secret", "1"))
    assert "x-secret" not in out
    assert connection_named(h(("Connection", " A ,b,, "))) == {b"a", b"b"}


def test_gateway_headers_replace_the_clients() -> None:
    out = forwarded(
        ("Authorization", "Bearer user-jwt"),
        ("X-Forwarded-For", "6.6.6.6"),
        ("X-Real-IP", "6.6.6.6"),
        ("X-Forwarded-Proto", "http"),
        ("X-Logway-Uid", "root"),
    )
    assert out["authorization"] == ["token=gw-token"]
    assert out["x-forwarded-for"] == ["10.1.1.1"]
    assert out["x-real-ip"] == ["10.1.1.1"]
    assert out["x-forwarded-proto"] == ["https"]
    assert out["x-logway-uid"] == ["alice"]


def test_without_client_uid_or_token_those_headers_are_absent() -> None:
    out = forwarded(("Authorization", "token=x"), client=None, uid=None, token=None)
    assert not {"authorization", "x-forwarded-for", "x-real-ip", "x-logway-uid"} & set(out)
    assert out["x-forwarded-proto"] == ["https"]


@pytest.mark.parametrize(
    ("uid", "sent"),
    [
        ("alice@example.com", "alice@example.com"),
        ("svc-logs_1.x+y~", "svc-logs_1.x+y~"),
        ("evil\r\nX-Injected: 1", "evil%0D%0AX-Injected%3A%201"),
        ("j\u00fcrgen", "j%C3%BCrgen"),
    ],
)
def test_uid_header_cannot_inject(uid: str, sent: str) -> None:
    assert forwarded(uid=uid)["x-logway-uid"] == [sent]


@pytest.mark.parametrize(
    ("cookies", "kept"),
    [
        (["dcos-acs-auth-cookie=t; dcos-acs-info-cookie=i"], None),
        (["a=1; dcos-acs-auth-cookie=t", "b=2"], b"a=1; b=2"),
        (
            ["dcos-acs-auth-cookie=t;some-random-cookie=some-random-value"],
            b"some-random-cookie=some-random-value",
        ),
        ([" x = y ;; dcos-acs-info-cookie"], b"x = y"),
        # Cookie names are case-sensitive, as Admin Router compared them.
        (["Dcos-Acs-Auth-Cookie=other"], b"Dcos-Acs-Auth-Cookie=other"),
    ],
)
def test_dcos_cookies_are_filtered(cookies: list[str], kept: bytes | None) -> None:
    assert filter_cookies(c.encode() for c in cookies) == kept


def test_at_most_one_cookie_header_goes_upstream() -> None:
    out = forwarded(("Cookie", "a=1"), ("Cookie", "dcos-acs-auth-cookie=t"), ("Cookie", "b=2"))
    assert out["cookie"] == ["a=1; b=2"]


def test_response_headers_are_allow_listed() -> None:
    upstream = h(
        ("Content-Type", "text/event-stream"),
        ("Content-Length", "10"),
        ("X-Journal-Skip-Next", "0"),
        ("X-Journal-Skip-Prev", "10"),
        ("X-Accel-Buffering", "TEST"),
        ("Content-Disposition", "attachment; filename=x.log.gz"),
        ("Cache-Control", "no-cache"),
        ("Access-Control-Allow-Origin", "*"),
        ("Set-Cookie", "s=1"),
        ("Server", "uvicorn"),
        ("Date", "today"),
        ("Transfer-Encoding", "chunked"),
        ("Connection", "keep-alive, X-Journal-Skip-Prev"),
        ("Keep-Alive", "timeout=5"),
        ("WWW-Authenticate", "acsjwt"),
        ("X-Internal", "10.0.0.7"),
    )
    kept = [name.decode() for name, _ in response_headers(upstream)]
    assert kept == [
        "content-type",
        "content-length",
        "x-journal-skip-next",
        "x-accel-buffering",
        "content-disposition",
        "cache-control",
        "access-control-allow-origin",
    ]


@pytest.mark.parametrize(
    ("location", "kept"),
    [
        ("/system/v1/agent/S1/logs/v2/task/t", True),
        ("../range/", True),
        ("range/?cursor=x", True),
        ("http://10.0.0.5:61001/v1/range/", False),
        ("https://evil.example/", False),
        ("//evil.example/x", False),
        ("/\\evil.example/x", False),
        ("javascript:alert(1)", False),
        ("http:evil.example", False),
    ],
)
def test_location_is_kept_only_when_it_names_no_host(location: str, kept: bool) -> None:
    assert keeps_location(location) is kept
    headers = response_headers(h(("Location", location)))
    assert (headers == [(b"location", location.encode())]) is kept
