"""Byte-exact dcos-log formats (reference §1.4), including Go's JSON quirks."""

from __future__ import annotations

import time

import orjson
import pytest

from app.journal.encoders import JsonEncoder, SseEncoder, TextEncoder, negotiate
from app.journal.entry import Entry

# realtime 0x5e2ab1c2d3e4f = 1657000000000000 + ..., monotonic 0x10 = 16
CURSOR = "s=ab;i=1f;b=cd;m=10;t=5e2ab1c2d3e4f;x=99"
REALTIME = 0x5E2AB1C2D3E4F


def entry(**raw: bytes | list[bytes]) -> Entry:
    return Entry(raw, CURSOR)


def test_json_is_gos_struct_order_sorted_fields_and_escapes() -> None:
    e = entry(ZED=b"z", MESSAGE="a<b>&c \u2028 d".encode(), ALPHA=b"1")
    out = JsonEncoder().encode([e])
    assert out == (
        b'{"fields":{"ALPHA":"1","MESSAGE":"a\\u003cb\\u003e\\u0026c \\u2028 d","ZED":"z"},'
        b'"cursor":"s=ab;i=1f;b=cd;m=10;t=5e2ab1c2d3e4f;x=99",'
        b'"monotonic_timestamp":16,"realtime_timestamp":%d}\n' % REALTIME
    )
    # The shared-entry path (live tail) gives the same bytes.
    assert e.json() + b"\n" == out


def test_binary_values_are_lossless_and_the_last_repeat_wins() -> None:
    e = entry(MESSAGE=b"\xff\xfe raw", K=[b"first", b"second"])
    fields = orjson.loads(JsonEncoder().encode([e]))["fields"]
    assert fields["MESSAGE"] == list(b"\xff\xfe raw")
    assert fields["K"] == "second"


def test_text_is_local_time_and_raw_message_and_skips_entries_without_message() -> None:
    e = entry(MESSAGE=b"hello \xff")
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(REALTIME // 1_000_000))
    assert TextEncoder().encode([e, entry(OTHER=b"x")]) == f"{stamp}: ".encode() + b"hello \xff\n"


def test_sse_has_ids_only_on_streams() -> None:
    e = entry(MESSAGE=b"m")
    stream = SseEncoder(with_id=True).encode([e])
    assert stream.startswith(b"id: " + CURSOR.encode() + b"\ndata: {")
    assert stream.endswith(b"}\n\n")
    assert SseEncoder(with_id=False).encode([e]) == b"data: " + e.json() + b"\n\n"


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        (None, "text/plain"),
        ("application/json", "application/json"),
        ("APPLICATION/JSON;charset=utf-8", "application/json"),
        ("text/event-stream;q=0.9, application/json;q=0.8", "text/event-stream"),
        ("application/json;q=oops", "text/plain"),
        ("image/png", "text/plain"),
    ],
)
def test_negotiate(accept: str | None, media: str) -> None:
    assert negotiate(accept) == media
