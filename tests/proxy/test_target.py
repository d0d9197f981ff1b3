"""Client input in the path or query can never move the upstream off the node (security §3
P1-P3): a table of attempts, each either a 400 or a URL on the node's own host."""

from __future__ import annotations

import httpx
import pytest

from app.core.errors import BadRequest
from app.proxy.target import MAX_QUERY_BYTES, normalised_path, upstream_url

NODE = "http://10.0.0.5:61001"


@pytest.mark.parametrize(
    ("path", "upstream"),
    [
        ("/", "/"),
        ("/v1/range/", "/v1/range/"),
        ("/v1/stream", "/v1/stream"),
        ("/v1/range/framework/fw-1/executor/nginx.1f5b-11e8/container/ct_1", None),
        ("/v2/component/dcos-mesos-master.service", None),
        ("/v1/fields/STREAM", None),
        ("/v1/range/%41bc", "/v1/range/Abc"),  # escapes of plain characters are normalised
        ("/v1/a%2eb", "/v1/a.b"),
        ("/v1/range/a:b~c!$&'()*+,;=", None),
    ],
)
def test_good_paths_are_kept_or_normalised(path: str, upstream: str | None) -> None:
    assert normalised_path(path) == (upstream or path)


@pytest.mark.parametrize(
    "path",
    [
        "",  # not a path
        "v1/range/",
        "@evil.example/v1/range/",  # userinfo, if someone concatenated base + path
        "http://evil.example/v1/range/",  # a full URL
        "//evil.example/v1/range/",  # protocol-relative
        "/v1//range/",
        "/..",
        "/v1/../master/state",
        "/v1/./range/",
        "/v1/%2e%2e/master",
        "/v1/%2E%2E/master",
        "/v1/.%2e/master",
        "/v1/a%2Fb",
        "/v1/a%2fb",
        "/v1/%2F%2Fevil.example",
        "/v1/a%5Cb",
        "/v1/a\\b",
        "/v1/..\\..\\x",
        "/v1/a%252Fb",  # double encoding
        "/v1/a%zzb",  # malformed escape
        "/v1/a%2",
        "/v1/%C0%AE%C0%AE",  # overlong UTF-8 '.'
        "/v1/a@evil.example",
        "/v1/a%40b",
        "/v1/a%00b",
        "/v1/a\x00b",
        "/v1/a\r\nHost: evil",
        "/v1/a%0d%0ab",
        "/v1/a b",
        "/v1/a?b",  # a query hidden in the path
        "/v1/a#b",
        "/v1/caf\u00e9",
        "/" + "a" * 5000,
    ],
)
def test_bad_paths_are_400(path: str) -> None:
    with pytest.raises(BadRequest) as caught:
        upstream_url(NODE, path, b"")
    assert caught.value.status == 400


@pytest.mark.parametrize(
    ("base", "path", "query", "url"),
    [
        (NODE, "/v1/range/", b"", "http://10.0.0.5:61001/v1/range/"),
        (NODE + "/", "/v1/range/", b"limit=1", "http://10.0.0.5:61001/v1/range/?limit=1"),
        (
            "http://10.0.0.5:61001/system/v1/logs",
            "/v1/range/",
            b"",
            "http://10.0.0.5:61001/system/v1/logs/v1/range/",
        ),
        (
            "https://node-1:443",
            "/v1/stream/",
            b"skip_prev=10",
            "https://node-1/v1/stream/?skip_prev=10",
        ),
    ],
)
def test_url_is_the_base_plus_path_plus_query(base: str, path: str, query: bytes, url: str) -> None:
    assert str(upstream_url(base, path, query)) == url


@pytest.mark.parametrize(
    "query",
    [
        b"key=value&var=num",
        b"cursor=s%3Dabc%3Bi%3D1&filter=K:a&filter=STREAM:STDERR",
        b"x=%2F..%2F&y=http://evil.example/@a",
        b"a=%zz&b=%&c",  # not ours to judge: the node answers 400 itself
        b"q=[1]{2}|^`\\",
    ],
)
def test_query_is_kept_byte_for_byte_and_never_moves_the_host(query: bytes) -> None:
    url = upstream_url(NODE, "/v1/range/", query)
    assert url.raw_path == b"/v1/range/?" + query
    assert (url.host, url.port) == ("10.0.0.5", 61001)


@pytest.mark.parametrize(
    "query",
    [
        b"a=b c",
        b"a=#frag",
        b'a="x"',
        b"a=<x>",
        b"a=\xc3\xa9",
        b"a=\r\nX: y",
        b"a=\x00",
        b"a" * (MAX_QUERY_BYTES + 1),
    ],
)
def test_queries_that_would_be_reencoded_are_400(query: bytes) -> None:
    with pytest.raises(BadRequest):
        upstream_url(NODE, "/v1/range/", query)


@pytest.mark.parametrize(
    "base",
    [
        "10.0.0.5:61001",
        "/v1",
        "ftp://10.0.0.5",
        "http://user:pw@10.0.0.5",
        "http://h/?q=1",
        "http://h/#f",
    ],
)
def test_a_bad_base_url_is_the_callers_bug(base: str) -> None:
    with pytest.raises((ValueError, httpx.InvalidURL)):
        upstream_url(base, "/v1/range/", b"")
