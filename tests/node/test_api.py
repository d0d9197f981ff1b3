"""The dcos-log API of a real `logway node` over a real journald namespace."""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator

import httpx
import orjson
import pytest

from app.devcluster.journald import JournaldNamespace
from tests.support.journal import sending_namespace
from tests.support.servers import node_reader

TASK = "framework/fw-1/executor/ex-1/container/ct-1"
TEXT_LINE = re.compile(rb"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}: ")


@pytest.fixture(scope="module")
def namespace() -> Iterator[JournaldNamespace]:
    with sending_namespace() as (ns, sender):
        for i in range(30):
            task = i % 2 == 0
            sender.send(
                {
                    "MESSAGE": f"entry {i}",
                    "SEQ": str(i),
                    "STREAM": "STDOUT" if i % 4 == 0 else "STDERR",
                    **(
                        {"FRAMEWORK_ID": "fw-1", "EXECUTOR_ID": "ex-1", "CONTAINER_ID": "ct-1"}
                        if task
                        else {"UNIT": "demo.service"}
                    ),
                }
            )
        sender.send({"NO_MESSAGE_FIELD": "x"})
        sender.send({"MESSAGE": "other unit", "UNIT": "other.service"})
        ns.sync()
        yield ns


@pytest.fixture(scope="module")
def base(namespace: JournaldNamespace) -> Iterator[str]:
    with node_reader(namespace.name, "--no-auth") as url:
        yield url


def get(base: str, path: str, **headers: str) -> httpx.Response:
    return httpx.get(base + path, headers=headers, timeout=10)


def ndjson(body: bytes) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in body.splitlines()]


def test_text_range_format_and_headers(base: str) -> None:
    r = get(base, "/v1/range/?limit=5&filter=SEQ:3")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain"
    assert r.headers["x-journal-skip-next"] == "0"
    assert r.headers["cache-control"] == "no-cache"
    assert r.headers["access-control-allow-origin"] == "*"
    assert TEXT_LINE.match(r.content)
    assert r.content.endswith(b": entry 3\n")


def test_json_entries_have_dcos_log_shape(base: str) -> None:
    r = get(base, f"/v1/range/{TASK}?skip_prev=3", accept="application/json")
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-journal-skip-prev"] == "3"
    entries = ndjson(r.content)
    assert [e["fields"]["SEQ"] for e in entries] == ["24", "26", "28"]  # type: ignore[index]
    for e in entries:
        assert list(e) == ["fields", "cursor", "monotonic_timestamp", "realtime_timestamp"]
        assert e["fields"]["CONTAINER_ID"] == "ct-1"  # type: ignore[index]


def test_entries_without_message_give_no_text(base: str) -> None:
    assert get(base, "/v1/range/?filter=NO_MESSAGE_FIELD:x").status_code == 204
    r = get(base, "/v1/range/?filter=NO_MESSAGE_FIELD:x", accept="application/json")
    assert r.status_code == 200
    assert len(ndjson(r.content)) == 1


def test_sse_range_has_no_id_but_stream_does(base: str) -> None:
    r = get(base, "/v1/range/?limit=2", accept="text/event-stream")
    assert r.content.startswith(b"data: {")
    assert b"\nid: " not in r.content
    assert not r.content.startswith(b"id:")
    with httpx.stream(
        "GET", base + "/v1/stream/?skip_prev=1", headers={"accept": "text/event-stream"}, timeout=10
    ) as s:
        assert s.headers["x-accel-buffering"] == "no"
        first = next(s.iter_lines())
    assert re.match(
        r"^id: s=[0-9a-f]+;i=[0-9a-f]+;b=[0-9a-f]+;m=[0-9a-f]+;t=[0-9a-f]+;x=[0-9a-f]+$", first
    )


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        ("application/json; charset=utf-8", "application/json"),
        ("text/event-stream, */*", "text/event-stream"),
        ("text/html, application/json;q=0.5", "application/json"),
        ("application/json;q=0, text/plain", "text/plain"),
        ("*/*", "text/plain"),
        ("", "text/plain"),
    ],
)
def test_accept_negotiation(base: str, accept: str, media: str) -> None:
    assert get(base, "/v1/range/?limit=1", accept=accept).headers["content-type"] == media


def test_empty_range_is_204_without_body(base: str) -> None:
    r = get(base, "/v1/range/?filter=SEQ:nope")
    assert r.status_code == 204
    assert r.content == b""


def test_download_is_gzip_with_dcos_log_names(base: str) -> None:
    r = get(base, f"/v1/range/{TASK}/download?limit=10&postfix=stdout")
    assert r.headers["content-disposition"] == "attachment; filename=task-ct-1-stdout.log.gz"
    assert gzip.decompress(r.content).count(b"\n") == 10
    r = get(base, "/v1/range/download?limit=2")
    assert r.headers["content-disposition"] == "attachment; filename=root-range.log.gz"
    assert TEXT_LINE.match(gzip.decompress(r.content))


def test_fields(base: str) -> None:
    r = get(base, "/v1/fields/CONTAINER_ID")
    assert r.json() == ["ct-1"]
    assert get(base, "/v1/fields/AGENT_ID").status_code == 204
    bad = get(base, "/v1/fields/container_id")
    assert bad.status_code == 400
    assert "container_id is not an allowed field" in bad.text


@pytest.mark.parametrize(
    ("path", "headers", "named"),
    [
        ("/v1/range/?cursor=garbage", {}, "cursor"),
        ("/v1/range/?cursor=s%3D1%3Bi%3D2%3Bb%3D3%3Bm%3D4%3Bt%3D5%3Bx%3D6", {}, "`cursor`"),
        ("/v1/range/?limit=ten", {}, "limit"),
        ("/v1/range/?limit=18446744073709551616", {}, "limit"),
        ("/v1/range/?skip_next=-1", {}, "skip_next"),
        ("/v1/range/?skip_prev=1.5", {}, "skip_prev"),
        ("/v1/range/?read_reverse=maybe", {}, "read_reverse"),
        ("/v1/range/?filter=NOCOLON", {}, "filter"),
        ("/v1/range/?filter=bad%20field:x", {}, "filter"),
        ("/v1/range/?filter=__CURSOR:x", {}, "filter"),
        ("/v1/stream/?filter=__REALTIME_TIMESTAMP:1", {}, "filter"),
        ("/v2/component?filter=__CURSOR:x", {}, "filter"),
        ("/v1/range/?since=yesterday", {}, "since"),
        ("/v1/range/?until=2026-01-01T00:00:00", {}, "until"),
        ("/v1/stream/?limit=3", {}, "limit"),
        ("/v1/stream/?read_reverse=true", {}, "read_reverse"),
        ("/v1/stream/", {"last-event-id": "nope"}, "Last-Event-ID"),
        ("/v2/component?skip=abc", {}, "skip"),
        ("/v2/component?limit=-3", {}, "limit"),
        ("/v2/component?cursor=BEGIN", {}, "cursor"),
    ],
)
def test_bad_input_is_a_400_naming_the_parameter(
    base: str, path: str, headers: dict[str, str], named: str
) -> None:
    r = get(base, path, **headers)
    assert r.status_code == 400, r.text
    assert named in r.text
    assert "Traceback" not in r.text


@pytest.mark.parametrize("path", ["/v1/range", "/v1/stream", "/v1/nope/", "/v2/task/x", "/"])
def test_unknown_routes_are_404(base: str, path: str) -> None:
    assert get(base, path).status_code == 404


def test_read_reverse(base: str) -> None:
    r = get(base, "/v1/range/?read_reverse=true&limit=3&filter=UNIT:demo.service")
    assert [line.split(b": ", 1)[1] for line in r.content.splitlines()] == [
        b"entry 29",
        b"entry 27",
        b"entry 25",
    ]


def test_since_until(base: str) -> None:
    entries = ndjson(get(base, "/v1/range/?filter=SEQ:10", accept="application/json").content)
    t = entries[0]["realtime_timestamp"]
    r = get(base, f"/v1/range/?since={t}&until={t}", accept="application/json")
    assert [e["fields"]["SEQ"] for e in ndjson(r.content)] == ["10"]  # type: ignore[index]


def test_v2_component_unit(base: str) -> None:
    # journald drops client-sent `_` fields, so `_SYSTEMD_UNIT` cannot be written from
    # here; the OR with it is covered in tests/journal/test_query.py.
    r = get(base, "/v2/component/demo.service?skip=-2")
    assert r.status_code == 200
    assert "x-journal-skip-next" not in r.headers
    assert [line.split(b": ", 1)[1] for line in r.content.splitlines()] == [
        b"entry 27",
        b"entry 29",
    ]
    assert get(base, "/v2/component?limit=10").content.count(b"\n") == 10
    end = get(base, "/v2/component?cursor=END").content
    assert end.endswith(b": other unit\n")
    assert end.count(b"\n") == 1
    beg = get(base, "/v2/component?cursor=BEG&limit=1", accept="application/json")
    assert ndjson(beg.content)[0]["fields"]["MESSAGE"] == "Journal started"  # type: ignore[index]
    assert get(base, "/v2/component/none.service").status_code == 204


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({f"x-h{i}": "v" for i in range(300)}, "too many request headers"),
        ({"x-big": "a" * 200_000}, "'x-big' is too large"),
        ({f"x-h{i}": "a" * 8_000 for i in range(6)}, "request headers too large"),
    ],
)
def test_oversized_header_blocks_are_431(base: str, headers: dict[str, str], why: str) -> None:
    r = httpx.get(base + "/v1/range/?limit=1", headers=headers, timeout=10)
    assert r.status_code == 431, r.text
    assert why in r.text
