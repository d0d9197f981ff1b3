"""Entries parsed from node reader bodies (split anywhere) and re-encoded for the client."""

from __future__ import annotations

import base64
import time

import orjson
import pytest

from app.journal.encoders import JSON, SSE, TEXT
from app.merge.cursor import (
    MAX_MEMBERS,
    AgentState,
    CompositeCursor,
    Debt,
    decode_cursor,
    digests,
    encode_cursor,
    pack,
)
from app.merge.entry import (
    BadEntry,
    Cover,
    EventParser,
    LineParser,
    MergedEncoder,
    MergedEntry,
    Positions,
    cursor_of_line,
)
from app.merge.fanin import SourceSpec
from app.merge.feed import owed
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


def test_event_parser_refuses_an_event_over_its_cap() -> None:
    parser = EventParser("S0", max_event_bytes=64)
    assert len(parser.feed(sse_event("S0", 1, 100)[:60])) == 0  # under the cap: held
    with pytest.raises(BadEntry):
        parser.feed(b"x" * 100)


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
    assert ids[0] == {
        "o": 42,
        "a": {"gone-S9": cursor(3, 3), "S0": cursor(1, 10)},
        "c": {},  # entries without a cover: coverage unknown
        "d": {},
    }
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


def _decoded(positions: Positions) -> CompositeCursor:
    return decode_cursor(positions.encoded())


def test_catch_up_entries_move_only_their_debt_and_the_last_settles_it() -> None:
    s0 = Cover(["c-1", "c-2"])
    positions = Positions(None)
    main = entry("S0", 9, 90)
    main.cover = Cover(["c-1"])
    positions.advance(main)
    debt = Debt(None, cursor(9, 90), digests(["c-2"]))
    positions.owe("S0", debt)
    state = _decoded(positions).state("S0")
    assert state is not None
    assert (state.cursor, state.members) == (cursor(9, 90), digests(["c-1"]))
    assert [(d.start, d.end) for d in state.debts] == [(None, debt.end)]
    # The follow goes on with both containers while the catch-up delivers c-2's early lines.
    later = entry("S0", 11, 110)
    later.cover = s0
    behind = entry("S0", 4, 40)
    behind.debt = debt
    out = MergedEncoder(SSE).encode([behind, later], positions)
    assert out.startswith(b"id: m2.")
    assert positions.cursors == {"S0": cursor(11, 110)}
    state = _decoded(positions).state("S0")
    assert state is not None
    assert state.members == s0.members
    assert [(d.start, d.end, d.members) for d in state.debts] == [
        (cursor(4, 40), cursor(9, 90), digests(["c-2"]))
    ]
    positions.owe("S0", debt)  # known already: keeps its progress
    assert positions.debts["S0"][debt.id].start == cursor(4, 40)
    last = entry("S0", 6, 60)
    last.debt, last.settles = debt, True
    MergedEncoder(JSON).encode([last], positions)
    assert _decoded(positions).state("S0") == AgentState(cursor(11, 110), s0.members, ())
    # A settled debt does not come back.
    positions.owe("S0", debt)
    assert positions.debts == {}


def test_an_empty_catch_up_settles_at_once_adding_its_containers() -> None:
    positions = Positions(None, {"S0": cursor(9, 90)})
    positions.begin("S0", Cover(["c-1"]))  # coverage unknown (m1): what is read now
    debt = Debt(None, cursor(9, 90), digests(["c-2"]))
    positions.owe("S0", debt)
    positions.settle("S0", debt)
    assert _decoded(positions).state("S0") == AgentState(cursor(9, 90), digests(["c-1", "c-2"]), ())
    positions.begin("S0", Cover(["c-3"]))  # known now: unchanged
    assert positions.members["S0"] == pack(digests(["c-1", "c-2"]))


def test_debts_of_an_agent_without_a_place_stay_out_of_the_cursor() -> None:
    positions = Positions(None)
    positions.owe("S0", Debt(None, cursor(9, 90), digests(["c-2"])))
    assert dict(_decoded(positions).debts) == {}
    positions.advance(entry("S0", 8, 80))
    assert _decoded(positions).state("S0") is not None
    assert len(_decoded(positions).debts["S0"]) == 1


def test_positions_resumed_from_a_cursor_encode_the_same_state() -> None:
    debt = Debt(cursor(2, 20), cursor(7, 70), digests(["c-2"]))
    raw = encode_cursor(
        5, {"S0": cursor(9, 90)}, {"S0": pack(digests(["c-1"]))}, {"S0": [debt.encoded()]}
    )
    again = Positions.resumed(decode_cursor(raw)).encoded()
    assert _same(decode_cursor(again), decode_cursor(raw))


def _same(a: CompositeCursor, b: CompositeCursor) -> bool:
    def plain(c: CompositeCursor) -> object:
        return {
            agent: (s.cursor, s.members, [(d.start, d.end, d.members) for d in s.debts])
            for agent, s in c.states().items()
        }

    return a.origin == b.origin and plain(a) == plain(b)


SPEC = SourceSpec("S0", "http://127.0.0.81:1", ("c-1", "c-2", "c-3"))


def test_owed_reads_uncovered_containers_from_the_origin_up_to_the_place() -> None:
    place = cursor(9, 90)
    jobs = owed(AgentState(place, digests(["c-1", "c-gone"])), SPEC)
    assert [(j.debt.start, j.debt.end, j.containers) for j in jobs] == [
        (None, place, ("c-2", "c-3"))
    ]
    assert jobs[0].debt.members == digests(["c-2", "c-3"])
    assert owed(AgentState(place, digests(SPEC.containers)), SPEC) == ()
    # m1: coverage unknown, taken as every container read now.
    assert owed(AgentState(place, None), SPEC) == ()


def test_owed_debts_go_on_from_their_progress_only_for_containers_readable_now() -> None:
    place = cursor(9, 90)
    debt = Debt(cursor(2, 20), cursor(7, 70), digests(["c-2", "c-secret"]))
    ahead = Debt(None, cursor(12, 120), digests(["c-3"]))  # its end is past the place
    done = Debt(cursor(7, 70), cursor(7, 70), digests(["c-1"]))  # nothing left
    state = AgentState(place, digests(["c-1"]), (debt, ahead, done))
    jobs = owed(state, SPEC)
    assert [(j.debt.start, j.debt.end, j.containers, j.debt.id) for j in jobs] == [
        (cursor(2, 20), cursor(7, 70), ("c-2",), debt.id),  # c-secret is not read
        (None, place, ("c-3",), ahead.id),  # clipped: the follow reads c-3 after the place
    ]
    # The same with coverage unknown: the debts still count.
    assert len(owed(AgentState(place, None, (debt,)), SPEC)) == 1
    # A debt of a container no longer readable reads nothing.
    hidden = Debt(None, place, digests(["c-secret"]))
    assert owed(AgentState(place, digests(SPEC.containers), (hidden,)), SPEC) == ()


def test_an_agent_with_very_many_containers_leaves_its_coverage_out() -> None:
    many = Cover(f"c-{i}" for i in range(MAX_MEMBERS + 1))
    assert many.packed is None
    positions = Positions(None)
    first = entry("S0", 1, 10)
    first.cover = Cover(["c-1"])
    positions.advance(first)
    assert positions.members == {"S0": pack(digests(["c-1"]))}
    second = entry("S0", 2, 20)
    second.cover = many
    positions.advance(second)
    assert _decoded(positions).state("S0") == AgentState(cursor(2, 20), None, ())
    assert len(positions.encoded()) < 1000
