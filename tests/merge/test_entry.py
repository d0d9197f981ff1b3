"""Entries parsed from node reader bodies (split anywhere) and re-encoded for the client."""

from __future__ import annotations

import base64
import time

import orjson
import pytest

from app.journal.encoders import JSON, SSE, TEXT
from app.proxy.merge_entry import (
    BadEntry,
    EventParser,
    LineParser,
    MergedEncoder,
    MergedEntry,
    Positions,
    cursor_of_line,
)
from tests.merge.fakes import cursor, entry, entry_json, sse_event


def _split_everywhere(data: bytes) -> list[list[bytes]]:
    return [[data[:i], data[i:]] for i in range(len(data) + 1)]


def test_event_parser_takes_cursor_and_data_wherever_chunks_split() -> None:
    body = b": ping\n\n" + sse_event("S0", 1, 100) + sse_event("S0", 2, 200)
    for chunks in _split_everywhere(body):
        parser = EventParser("S0")
        got = [e for chunk in chunks for e in parser.feed(chunk)]
        assert [(e.cursor, e.ts) for e in got] == [(cursor(1, 100), 100), (cursor(2, 200), 200)]
        assert got[0].data == entry_json("S0", 1, 100, "S0 1")


def test_event_parser_keeps_a_partial_event_until_it_is_whole() -> None:
    parser = EventParser("S0")
    event = sse_event("S0", 1, 100)
    assert parser.feed(event[:-1]) == []
    parser.discard_partial()  # the connection broke: that half is dropped, not completed
    assert parser.feed(event[-1:]) == []
    assert len(parser.feed(event)) == 1


def test_event_parser_reads_other_spellings() -> None:
    data = entry_json("S0", 1, 100, "x")
    event = b"event: log\r\nid:" + cursor(1, 100).encode() + b"\r\ndata:" + data + b"\r\n\r\n"
    (got,) = EventParser("S0").feed(event + b"data: no id\n\n")
    assert got.cursor == cursor(1, 100)
    assert got.data == data


def test_line_parser_and_the_cursor_key() -> None:
    tricky = entry_json("S0", 7, 700, 'he said ,"cursor":"s=evil" and left')
    assert cursor_of_line(tricky) == cursor(7, 700)
    body = tricky + b"\n" + entry_json("S0", 8, 800, "next") + b"\n"
    for chunks in _split_everywhere(body):
        parser = LineParser("S0")
        got = [e.cursor for chunk in chunks for e in parser.feed(chunk)]
        parser.close()
        assert got == [cursor(7, 700), cursor(8, 800)]


def test_line_parser_refuses_a_truncated_body() -> None:
    parser = LineParser("S0")
    parser.feed(entry_json("S0", 1, 1, "x")[:20])
    with pytest.raises(BadEntry):
        parser.close()
    with pytest.raises(BadEntry):
        LineParser("S0").feed(b'{"fields":{}}\n')


def test_an_entry_without_agent_id_gets_it() -> None:
    data = (
        b'{"fields":{"MESSAGE":"a<b"},"cursor":"%s","realtime_timestamp":5}' % cursor(1, 5).encode()
    )
    got = MergedEntry("S9", cursor(1, 5), data)
    fields = orjson.loads(got.data)["fields"]
    assert fields == {"AGENT_ID": "S9", "MESSAGE": "a<b"}
    assert b"\\u003c" in got.data  # re-encoded as the node encodes (Go's escapes)
    kept = entry("S1", 1, 5)
    assert kept.data == entry_json("S1", 1, 5, "S1 1")  # with one: the bytes as they came


def test_sse_ids_are_composite_cursors_that_move_per_entry() -> None:
    positions = Positions(42, {"gone-S9": cursor(3, 3)})
    encoder = MergedEncoder(SSE)
    out = encoder.encode([entry("S0", 1, 10), entry("S1", 1, 11), entry("S0", 2, 12)], positions)
    events = out.split(b"\n\n")[:-1]
    ids = [orjson.loads(base64.urlsafe_b64decode(e.split(b"\n")[0][7:] + b"==")) for e in events]
    assert ids[0] == {"o": 42, "a": {"gone-S9": cursor(3, 3), "S0": cursor(1, 10)}}
    assert ids[1]["a"]["S1"] == cursor(1, 11)
    assert ids[2]["a"] == {"gone-S9": cursor(3, 3), "S0": cursor(2, 12), "S1": cursor(1, 11)}
    assert events[0].split(b"\n")[1] == b"data: " + entry_json("S0", 1, 10, "S0 1")
    assert encoder.heartbeat() == b": ping\n\n"


def test_ndjson_and_text() -> None:
    entries = [entry("S0", 1, 1_700_000_000_000_000), entry("S1", 1, 1_700_000_001_000_000)]
    positions = Positions(None)
    ndjson = MergedEncoder(JSON).encode(entries, positions)
    assert ndjson == b"".join(e.data + b"\n" for e in entries)
    assert positions.cursors == {"S0": entries[0].cursor, "S1": entries[1].cursor}
    text = MergedEncoder("text/html").encode(entries, Positions(None))
    assert MergedEncoder("text/html").media_type == TEXT
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(1_700_000_000)).encode()
    assert text.split(b"\n")[0] == stamp + b": S0 1"
    no_message = MergedEntry("S0", cursor(2, 2), b'{"fields":{"AGENT_ID":"S0"},"cursor":"x"}')
    binary = MergedEntry(
        "S0", cursor(3, 3), b'{"fields":{"AGENT_ID":"S0","MESSAGE":[255,0,65]},"cursor":"x"}'
    )
    lines = MergedEncoder(TEXT).encode([no_message, binary], Positions(None))
    assert lines.count(b"\n") == 1
    assert lines.endswith(b": \xff\x00A\n")
    assert MergedEncoder(TEXT).heartbeat() is None


def test_catch_up_entries_move_no_position() -> None:
    positions = Positions(None, {"S0": cursor(9, 90)})
    behind = entry("S0", 4, 40)
    behind.catchup = True
    out = MergedEncoder(SSE).encode([behind], positions)
    assert positions.cursors == {"S0": cursor(9, 90)}
    assert out.startswith(b"id: " + positions.encoded().encode() + b"\n")
