"""The C reader (app/journal/_fast.c) against the Python path and journalctl, on a real
journal of tricky entries: binary and non-UTF-8 values, Go's escapes, control characters,
repeated fields, entries without MESSAGE, huge (compressed) fields, and the cursor and
timestamps of each entry.

An encoder subclass is read in Python (`native_format` picks exact types only), so every
case runs both paths through the same `Reading` and must give the same bytes.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator

import pytest

from app.devcluster.journald import JournaldNamespace
from app.journal.encoders import (
    Encoder,
    JsonEncoder,
    LineEncoder,
    NativeFormat,
    SseEncoder,
    TextEncoder,
    native_format,
)
from app.journal.entry import Entry
from app.journal.handle import JournalLocation
from app.journal.query import Query
from app.journal.search import compile_search
from app.journal.source import Journal, JournalSettings
from tests.support.journal import Sender

HUGE = 200_000  # above journald's compression threshold and libsystemd's 64 KiB data limit


class PyJson(JsonEncoder):
    pass


class PyText(TextEncoder):
    pass


class PyLines(LineEncoder):
    pass


class PySse(SseEncoder):
    pass


TRICKY: list[dict[str, str | bytes]] = [
    {"MESSAGE": "plain line", "K": "v"},
    {"MESSAGE": 'go <escapes> & "quotes" \\ \u2028 \u2029 é 😀', "ZED": "z", "ALPHA": "a"},
    {"MESSAGE": "controls \x01\x07\x08\t\x0b\x0c\r\x1b\x1f\x7f end"},
    {"MESSAGE": "multi\nline\nmessage"},
    {"MESSAGE": b"\xff\xfe not utf-8"},
    {"MESSAGE": b"surrogate \xed\xa0\x80", "OVERLONG": b"\xc0\xaf", "CUT": b"abc\xe2\x82"},
    {"MESSAGE": b"above U+10FFFF \xf4\x90\x80\x80", "OK4": "\U0010ffff".encode()},
    {"MESSAGE": "binary field", "BLOB": b"\x00\x01\x02\n\xff"},
    {"NO_MESSAGE": "this entry has none"},
    {"MESSAGE": "", "EMPTY": ""},
    {"MESSAGE": "huge " + "x" * HUGE},
    {"MESSAGE": b"huge binary \xff" + b"y" * HUGE},
    *({"MESSAGE": f"filler {i} needle" if i % 7 == 3 else f"filler {i}"} for i in range(40)),
]
# Datagrams with a field repeated (the native protocol allows it; a dict cannot).
REPEATED = [
    b"MESSAGE=repeated fields\nK=first\nK=second\nK=third\n",
    b"MESSAGE=first message\nMESSAGE=last message\nX=1\n",
]


@pytest.fixture
async def journal(journal_namespace: JournaldNamespace) -> AsyncIterator[Journal]:
    sender = Sender(journal_namespace)
    sender.send_many(TRICKY[:4])
    for raw in REPEATED:
        sender.sock.sendall(raw)
    sender.send_many(TRICKY[4:])
    sender.close()
    journal_namespace.sync()
    # A tiny read batch exercises the Python path's batch boundaries.
    j = Journal(JournalLocation(namespace=journal_namespace.name), JournalSettings(read_batch=3))
    await j.start()
    yield j
    await j.close()


async def read_bytes(journal: Journal, query: Query, encoder: Encoder) -> bytes:
    reading = await journal.open(query)
    return b"".join([chunk async for chunk in reading.encoded(encoder)])


async def all_entries(journal: Journal) -> list[Entry]:
    reading = await journal.open(Query())
    return [e async for batch in reading.batches() for e in batch]


PAIRS = [
    (JsonEncoder(), PyJson(), NativeFormat.JSON),
    (TextEncoder(), PyText(), NativeFormat.TEXT),
    (LineEncoder(), PyLines(), NativeFormat.LINES),
    (SseEncoder(with_id=False), PySse(with_id=False), NativeFormat.SSE),
]


def test_native_format_only_for_the_exact_encoders() -> None:
    for fast, slow, fmt in PAIRS:
        assert native_format(fast) is fmt
        assert native_format(slow) is None
    assert native_format(SseEncoder(with_id=True)) is None


@pytest.mark.parametrize(("fast", "slow", "fmt"), PAIRS, ids=[p[2].name for p in PAIRS])
async def test_every_format_is_byte_identical_to_the_python_path(
    journal: Journal, fast: Encoder, slow: Encoder, fmt: NativeFormat
) -> None:
    everything = await all_entries(journal)
    cursors = [e.cursor for e in everything]
    realtimes = sorted(e.realtime for e in everything)
    middle = realtimes[len(realtimes) // 2]
    queries = [
        Query(),
        Query(reverse=True),
        Query(limit=5),
        Query(limit=7, reverse=True),
        Query(skip_prev=4),
        Query(cursor=cursors[10], skip_next=2, limit=9),
        Query(cursor=cursors[20], reverse=True),
        Query(since=middle),
        Query(until=middle, reverse=True),
        Query(since=realtimes[5], until=realtimes[30], limit=12),
        Query(matches=(("K", "v"),)),
    ]
    for query in queries:
        expected = await read_bytes(journal, query, slow)
        assert expected, query
        got = await read_bytes(journal, query, fast)
        assert got == expected, query


def as_bytes(value: object) -> bytes | list[bytes]:
    """A JSON field value as bytes: journalctl writes text with control characters as a
    list of byte values where dcos-log writes a string, and a repeated field as a list of
    its values where dcos-log keeps the last (so the last is compared)."""
    if isinstance(value, str):
        return value.encode()
    assert isinstance(value, list)
    if value and isinstance(value[0], str | list):
        return as_bytes(value[-1])  # type: ignore[return-value]
    return bytes(value)


async def test_json_matches_journalctl(
    journal: Journal, journal_namespace: JournaldNamespace
) -> None:
    """Fields, cursor and both timestamps as journalctl reads them (`-o json --all`), for
    every entry whose fields journalctl and dcos-log write alike (one value per field)."""
    ours = [
        json.loads(line)
        for line in (await read_bytes(journal, Query(), JsonEncoder())).split(b"\n")
        if line
    ]
    out = subprocess.run(
        ["journalctl", f"--namespace={journal_namespace.name}", "-o", "json", "--all"],
        capture_output=True,
        check=True,
    ).stdout
    theirs = [json.loads(line) for line in out.splitlines()]
    # journald adds a few entries of its own (the namespace's start).
    assert len(ours) == len(theirs) >= len(TRICKY) + len(REPEATED)
    compared = 0
    for mine, peer in zip(ours, theirs, strict=True):
        assert mine["cursor"] == peer["__CURSOR"]
        assert mine["realtime_timestamp"] == int(peer["__REALTIME_TIMESTAMP"])
        assert mine["monotonic_timestamp"] == int(peer["__MONOTONIC_TIMESTAMP"])
        fields = {k: as_bytes(v) for k, v in peer.items() if not k.startswith("__")}
        assert {k: as_bytes(v) for k, v in mine["fields"].items()} == fields
        compared += 1
    assert compared == len(theirs)


async def test_count_is_the_python_count(journal: Journal) -> None:
    everything = await all_entries(journal)
    middle = sorted(e.realtime for e in everything)[len(everything) // 2]
    queries = (Query(), Query(since=middle), Query(limit=10), Query(until=middle, reverse=True))
    for query in queries:
        reading = await journal.open(query)
        expected = sum([len(batch) async for batch in reading.batches()])
        reading = await journal.open(query)
        assert await reading.count() == expected > 0, query


@pytest.mark.parametrize("reverse", [False, True])
@pytest.mark.parametrize(
    "pattern", ["needle", "^filler 1", "(?i)GO <ESCAPES>", "not utf-8", "huge", "^$", "nowhere"]
)
async def test_grep_scan_equals_brute_force(journal: Journal, pattern: str, reverse: bool) -> None:
    everything = await all_entries(journal)
    search = compile_search([pattern])
    assert search is not None
    expected = [e.cursor for e in everything if search.matches(e.message)]
    if reverse:
        expected.reverse()
    reading = await journal.open(Query(search=search, reverse=reverse))
    got = [e.cursor async for batch in reading.batches() for e in batch]
    assert got == expected
    reading = await journal.open(Query(search=search, reverse=reverse, limit=2))
    got = [e.cursor async for batch in reading.batches() for e in batch]
    assert got == expected[:2]


def test_read_refuses_a_foreign_object() -> None:
    from app.journal import _fast

    with pytest.raises(TypeError):
        _fast.read(object(), 1, 1, False, False, -1, -1, -1)
    with pytest.raises(TypeError):
        _fast.messages(object(), 1, False, False)
