"""The SSE framer: only whole events go out, whatever the chunking, and the last id is known."""

from __future__ import annotations

import pytest

from app.proxy.sse import Event, SseError, SseFramer, SseParser, last_event_id

EVENTS = [
    b": ping\n\n",
    b'id: s=1;i=1\ndata: {"MESSAGE": "one"}\n\n',
    b'id: s=1;i=2\ndata: {"MESSAGE": "id: not-a-field"}\n\n',
    b": ping\n\n",
    b"id: s=1;i=3\nevent: x\ndata: a\ndata: b\n\n",
]
STREAM = b"".join(EVENTS)


def feed_all(framer: SseFramer, stream: bytes, sizes: list[int]) -> list[bytes]:
    out, at = [], 0
    for size in sizes:
        forwarded = framer.feed(stream[at : at + size])
        if forwarded:
            out.append(forwarded)
        at += size
    return out


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 13, 64, len(STREAM)])
def test_every_chunking_forwards_whole_events_and_the_same_bytes(size: int) -> None:
    framer = SseFramer()
    sizes = [size] * (len(STREAM) // size + 1)
    out = feed_all(framer, STREAM, sizes)
    assert b"".join(out) == STREAM
    for piece in out:  # each forwarded piece ends on an event boundary
        assert piece.endswith(b"\n\n")
    assert framer.last_id == "s=1;i=3"
    assert framer.pending == 0


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_a_cut_anywhere_holds_back_exactly_the_incomplete_event(cut: int) -> None:
    framer = SseFramer()
    out = framer.feed(STREAM[:cut])
    assert STREAM.startswith(out)
    complete = [e for i, e in enumerate(EVENTS) if len(b"".join(EVENTS[: i + 1])) <= cut]
    assert out == b"".join(complete)
    ids = [last_event_id(e) for e in complete if last_event_id(e) is not None]
    assert framer.last_id == (ids[-1] if ids else None)
    assert framer.discard_partial() == STREAM[len(out) : cut]
    assert framer.pending == 0


@pytest.mark.parametrize(
    ("stream", "events", "last_id"),
    [
        (b"id: 1\r\ndata: a\r\n\r\nid: 2\r\ndata: b\r\n\r\n", 2, "2"),
        (b"id: 1\ndata: a\r\n\nid: 2\r\ndata: b\n\r\n", 2, "2"),
        (b"id:7\ndata: a\n\n", 1, "7"),  # no space after the colon
        (b"id\ndata: a\n\n", 1, ""),  # an empty id resets it
        (b"id: a\x00b\ndata: x\n\n", 1, None),  # ids with NUL are ignored
        (b"data: id: 5\n\n", 1, None),
        (b"idx: 5\ndata: x\n\n", 1, None),
    ],
)
def test_line_endings_and_id_fields(stream: bytes, events: int, last_id: str | None) -> None:
    for size in (1, 2, len(stream)):
        framer = SseFramer()
        out = feed_all(framer, stream, [size] * len(stream))
        assert b"".join(out) == stream
        assert framer.last_id == last_id
        assert framer.pending == 0


def test_cr_only_lines() -> None:
    framer = SseFramer()
    assert framer.feed(b"id: 1\rdata: a\r\rid: 2\rdata: b\r") == b"id: 1\rdata: a\r\r"
    assert framer.feed(b"\r: ping\r") == b"id: 2\rdata: b\r\r"
    assert framer.last_id == "2"


def test_a_trailing_cr_waits_for_a_possible_lf() -> None:
    framer = SseFramer()
    assert framer.feed(b"id: 1\r\ndata: a\r\n\r") == b""
    assert framer.feed(b"\nid: 2") == b"id: 1\r\ndata: a\r\n\r\n"
    assert framer.last_id == "1"


def test_an_oversized_event_passes_through_and_ends_resumability() -> None:
    framer = SseFramer(max_event_bytes=20)
    assert framer.feed(b"id: 1\ndata: a\n\n") == b"id: 1\ndata: a\n\n"
    assert framer.resumable
    assert framer.feed(b"id: 2\ndata: ") == b""
    assert framer.feed(b"0123456789") == b"id: 2\ndata: 0123456789"
    assert not framer.resumable
    assert framer.feed(b"\n\n") == b"\n\n"


def test_holding_back_is_linear_not_quadratic() -> None:
    framer = SseFramer()
    for _ in range(20_000):  # a 200 kB event in 10-byte chunks rescans only its tail
        assert framer.feed(b"data: xxxx") == b""
    assert framer.feed(b"\n\n").endswith(b"xxxx\n\n")


# --- SseParser: whole events, parsed --------------------------------------------------------------

PARSED = (
    b": ping\n\n"
    b'id: c1\ndata: {"a":1}\n\n'
    b'id: c2\r\ndata: {"a":2}\r\n\r\n'
    b"data: first\rdata: second\r\r"  # no id: the last one still holds
    b'event: x\nretry: 5\nid: c3\ndata:{"a":3}\n\n'
    b"id: c4\n\n"  # an id alone moves the resume point, no event
    b'id: c5\ndata: {"a":5}\n'  # cut before its blank line: never dispatched
)
EXPECTED = [
    Event(b'{"a":1}', "c1", named=True),
    Event(b'{"a":2}', "c2", named=True),
    Event(b"first\nsecond", "c2", named=False),  # the id held over, not its own
    # Its `event` field is kept (a gateway's last event is `access-ended`).
    Event(b'{"a":3}', "c3", named=True, type="x"),
]


@pytest.mark.parametrize("size", [1, 2, 3, 7, len(PARSED)])
def test_parser_events_whatever_the_chunks(size: int) -> None:
    parser = SseParser()
    events: list[Event] = []
    for i in range(0, len(PARSED), size):
        events += parser.feed(PARSED[i : i + size])
    assert events == EXPECTED
    assert parser.last_id == "c4"  # c5's event never completed


def test_parser_cr_at_a_chunk_end_waits_for_a_possible_lf() -> None:
    parser = SseParser()
    assert parser.feed(b"data: x\r") == []
    assert parser.feed(b"\n\r\n") == [Event(b"x", None)]


def test_parser_comments_other_than_the_keepalive_are_kept() -> None:
    parser = SseParser()
    parser.feed(b": ping\n\n: agent S1 unavailable: refused\n\n:\n\ndata: x\n\n")
    assert parser.comments == ["agent S1 unavailable: refused"]


def test_parser_refuses_an_endless_event() -> None:
    parser = SseParser(max_event_bytes=100)
    for _ in range(5):
        parser.feed(b"data: " + b"x" * 10 + b"\n")  # 85 bytes of one event held
    with pytest.raises(SseError):
        parser.feed(b"data: " + b"x" * 10 + b"\n")


LF_ONLY = (
    b'id: c1\ndata: {"a":1}\n\n'  # the usual event: taken whole, not line by line
    b"id: c2\ndata: \n\n"  # no data: no event, the id moves
    b"id: c\x003\ndata: nul\n\n"  # an id with NUL is ignored
    b"id: c4\ndata: a\ndata: b\n\n"  # more lines: line by line
    b"data: no id\n\n\n"  # an extra blank line
    b"id: c5\nevent: x\ndata: typed\n\n"
    b": agent S1 unavailable\n\nidx: 6\ndata: y\n\n"
)


@pytest.mark.parametrize("size", [1, 5, 16, len(LF_ONLY)])
def test_lf_only_streams_parse_as_the_same_stream_with_crlf(size: int) -> None:
    def parse(stream: bytes) -> tuple[list[Event], str | None, list[str]]:
        parser = SseParser()
        events = [e for i in range(0, len(stream), size) for e in parser.feed(stream[i : i + size])]
        return events, parser.last_id, parser.comments

    lf = parse(LF_ONLY)
    assert lf == parse(LF_ONLY.replace(b"\n", b"\r\n"))  # the line-by-line path
    assert [e.data for e in lf[0]] == [b'{"a":1}', b"nul", b"a\nb", b"no id", b"typed", b"y"]
    assert lf[1] == "c5"
