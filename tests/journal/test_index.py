"""grep= through journald's index (app/journal/index.py) against the scan and against a
brute-force search of `journalctl --namespace … -o json`, on a real namespace whose files
were rotated between entries of a repeated message."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from app.devcluster.journald import JournaldNamespace
from app.journal.handle import JournalLocation
from app.journal.index import Bounds
from app.journal.query import Query
from app.journal.search import compile_search
from app.journal.source import Journal, JournalSettings
from tests.support.journal import Sender, sending_namespace

MESSAGES: list[str | bytes] = [
    "error: disk full",  # repeated across both files
    "Error: timeout talking to db",
    "info: all good",
    "naïve café 日本語",
    b"caf\xe9 bad byte error",
    "warn: slow ERROR-ish",
    "",
]
PATTERNS = {
    "plain": "error",
    "anchored": "^Error",
    "case-insensitive": "(?i)error",
    "unicode": "日本|naïve",
    "non-utf8": "bad byte",
    "none": "zzz-not-there",
    "every entry": ".*",
}
QUERIES = {
    "all": Query(),
    "filter": Query(matches=(("CONTAINER_ID", "ct-1"),)),
    "unit any_of": Query(any_of=(("UNIT", "a.service"), ("_SYSTEMD_UNIT", "a.service"))),
    "limit": Query(limit=3),
    "reverse": Query(reverse=True),
    "reverse limit": Query(reverse=True, limit=4),
}
# An entry with two MESSAGE fields: the scan (and so the index) matches the first.
TWO_MESSAGES = [
    b"MESSAGE=info: first of two\nMESSAGE=error: second of two\nUNIT=a.service\n",
    b"MESSAGE=error: first of two\nMESSAGE=info: second of two\nUNIT=a.service\n",
]


def _fields(i: int) -> dict[str, str | bytes]:
    fields: dict[str, str | bytes] = {"SEQ": str(i)}
    if i % 9 != 8:  # some entries have no MESSAGE
        fields["MESSAGE"] = MESSAGES[0] if i % 3 == 0 else MESSAGES[(i // 3) % 7]
    if i % 2:
        fields.update(CONTAINER_ID="ct-1", STREAM="STDOUT")
    else:
        fields["UNIT"] = "a.service" if i % 4 == 0 else "b.service"
    return fields


@pytest.fixture(scope="module")
def namespace() -> Iterator[JournaldNamespace]:
    with sending_namespace() as (ns, sender):
        for i in range(60):
            sender.send(_fields(i))
        sender.sock.sendall(TWO_MESSAGES[0])
        ns.sync()
        ns.rotate()  # the repeated message now lives in two files
        for i in range(60, 120):
            sender.send(_fields(i))
        sender.sock.sendall(TWO_MESSAGES[1])
        ns.sync()
        yield ns


@dataclass(frozen=True)
class Row:
    cursor: str
    fields: dict[str, object]
    message: bytes | None  # the first MESSAGE


def _value(raw: object) -> bytes:
    return bytes(raw) if isinstance(raw, list) else str(raw).encode()


def rows_of(ns: JournaldNamespace) -> list[Row]:
    out = subprocess.run(
        ["journalctl", f"--namespace={ns.name}", "-o", "json", "--no-pager"],
        check=True,
        capture_output=True,
    ).stdout
    rows = []
    for line in out.splitlines():
        doc = orjson.loads(line)
        raw = doc.get("MESSAGE")
        # A repeated field is a list of values; a value that is not UTF-8, a list of bytes.
        if isinstance(raw, list) and raw and not isinstance(raw[0], int):
            raw = raw[0]
        rows.append(Row(doc["__CURSOR"], doc, None if raw is None else _value(raw)))
    return rows


def brute_force(rows: list[Row], pattern: str, q: Query) -> list[str]:
    rx = re.compile(pattern.encode())

    def selected(row: Row) -> bool:
        if q.any_of and not any(row.fields.get(k) == v for k, v in q.any_of):
            return False
        # journald: values of one field are ORed, fields ANDed
        if any(row.fields.get(k) not in {v for n, v in q.matches if n == k} for k, _ in q.matches):
            return False
        return row.message is not None and rx.search(row.message) is not None

    found = [r.cursor for r in rows if selected(r)]
    if q.reverse:
        found.reverse()
    return found[: q.limit]


@pytest.fixture
async def journals(namespace: JournaldNamespace) -> AsyncIterator[tuple[Journal, Journal]]:
    """The same namespace read with the index at once (no scan first) and with the scan
    only (no value allowed)."""
    location = JournalLocation(namespace=namespace.name)
    indexed = Journal(location, JournalSettings(index_bounds=Bounds(scan_first=0)))
    scanned = Journal(location, JournalSettings(index_bounds=Bounds(values=0, scan_first=0)))
    await indexed.start()
    await scanned.start()
    yield indexed, scanned
    await indexed.close()
    await scanned.close()


async def read(journal: Journal, query: Query, *, follow: bool = False) -> list[str]:
    reading = await journal.open(query, follow=follow)
    out: list[str] = []
    async for batch in reading.batches():
        out += [e.cursor for e in batch]
        if follow:
            break
    await reading.aclose()
    return out


def _with(query: Query, pattern: str, **changes: object) -> Query:
    fields = {
        "matches": query.matches,
        "any_of": query.any_of,
        "limit": query.limit,
        "reverse": query.reverse,
        "search": compile_search([pattern]),
    }
    return Query(**{**fields, **changes})  # type: ignore[arg-type]


@pytest.mark.parametrize("query_name", sorted(QUERIES))
@pytest.mark.parametrize("name", sorted(PATTERNS))
async def test_index_equals_scan_and_brute_force(
    namespace: JournaldNamespace, journals: tuple[Journal, Journal], name: str, query_name: str
) -> None:
    indexed, scanned = journals
    pattern = PATTERNS[name]
    query = _with(QUERIES[query_name], pattern)
    expected = brute_force(rows_of(namespace), pattern, query)
    assert expected or name == "none"
    assert await read(indexed, query) == expected
    assert indexed.index_reads == {"index": 1}
    assert await read(scanned, query) == expected
    # No value allowed: the scan, unless no value matches at all.
    assert scanned.index_reads == ({"index": 1} if name == "none" else {"values": 1})
    count = await (await indexed.open(query)).count()
    assert count == len(expected)
    assert indexed.index_reads == {"index": 2}


@pytest.mark.parametrize("reverse", [False, True])
async def test_the_index_answers_what_the_scan_first_did_not(
    namespace: JournaldNamespace, reverse: bool
) -> None:
    location = JournalLocation(namespace=namespace.name)
    journal = Journal(location, JournalSettings(index_bounds=Bounds(scan_first=0.3)))
    await journal.start()
    try:
        query = _with(Query(reverse=reverse), "(?i)error")
        assert await read(journal, query) == brute_force(rows_of(namespace), "(?i)error", query)
        assert await (await journal.open(query)).count() == len(
            brute_force(rows_of(namespace), "(?i)error", query)
        )
        assert journal.index_reads == {"index": 2}
    finally:
        await journal.close()


async def test_a_repeated_message_across_files_comes_whole_and_in_order(
    namespace: JournaldNamespace, journals: tuple[Journal, Journal]
) -> None:
    indexed, _ = journals
    rows = rows_of(namespace)
    repeated = [r for r in rows if r.message == b"error: disk full"]
    expected = [r.cursor for r in repeated]
    # Before and after the rotation, so in two files.
    assert {int(str(r.fields["SEQ"])) < 60 for r in repeated} == {True, False}
    assert len(expected) >= 40
    assert await read(indexed, _with(Query(), "^error: disk full$")) == expected
    assert await read(indexed, _with(Query(), "^error: disk full$", reverse=True)) == expected[::-1]
    assert indexed.index_reads == {"index": 2}
    assert len(list(namespace.directory.glob("*.journal"))) >= 2


async def test_two_message_fields_match_on_the_first(
    namespace: JournaldNamespace, journals: tuple[Journal, Journal]
) -> None:
    indexed, scanned = journals
    query = _with(Query(), "of two")
    found = await read(indexed, query)
    assert found == await read(scanned, query)
    messages = {r.cursor: r.message for r in rows_of(namespace)}
    assert [messages[c] for c in found] == [b"info: first of two", b"error: first of two"]
    only_first = await read(indexed, _with(Query(), "error: .* of two"))
    assert [messages[c] for c in only_first] == [b"error: first of two"]


@pytest.mark.parametrize(
    ("bounds", "reason"), [(Bounds(values=2), "values"), (Bounds(entries=5), "entries")]
)
async def test_past_a_bound_it_falls_back_to_the_same_result(
    namespace: JournaldNamespace, bounds: Bounds, reason: str
) -> None:
    journal = Journal(
        JournalLocation(namespace=namespace.name), JournalSettings(index_bounds=bounds)
    )
    await journal.start()
    try:
        query = _with(Query(), "(?i)error")
        expected = brute_force(rows_of(namespace), "(?i)error", query)
        assert len(expected) > 5
        assert await read(journal, query) == expected
        assert journal.index_reads == {reason: 1}
    finally:
        await journal.close()


async def test_filters_selecting_few_entries_scan(namespace: JournaldNamespace) -> None:
    location = JournalLocation(namespace=namespace.name)
    journal = Journal(location)  # the default share
    await journal.start()
    try:
        few = _with(Query(matches=(("SEQ", "3"), ("SEQ", "6"))), "error")
        expected = brute_force(rows_of(namespace), "error", few)
        assert len(expected) == 2
        assert await read(journal, few) == expected
        assert await read(journal, _with(few, "error", reverse=True)) == expected[::-1]
        assert journal.index_reads == {"scanned": 2}
        many = _with(Query(matches=(("CONTAINER_ID", "ct-1"),)), "error")
        assert await read(journal, many) == brute_force(rows_of(namespace), "error", many)
        assert journal.index_reads == {"scanned": 2, "index": 1}
    finally:
        await journal.close()


@pytest.mark.parametrize(
    "changes",
    [
        {"search": compile_search(["error"], context=1)},
        {"skip_prev": 2},
        {"skip_next": 1},
        {"since": 1},
        {"until": 2**62},
    ],
    ids=["context", "skip_prev", "skip_next", "since", "until"],
)
async def test_reads_it_cannot_prove_equal_scan(
    journals: tuple[Journal, Journal], changes: dict[str, object]
) -> None:
    indexed, scanned = journals
    query = _with(Query(), "error", **changes)
    assert await read(indexed, query) == await read(scanned, query)
    assert indexed.index_reads == {}


async def test_a_follow_scans(journals: tuple[Journal, Journal]) -> None:
    indexed, _ = journals
    reading = await indexed.open(_with(Query(), "error"), follow=True)
    batches = reading.batches(heartbeat=0.05)
    assert await anext(batches)
    await batches.aclose()
    assert indexed.index_reads == {}


async def test_after_a_cursor_it_scans(
    namespace: JournaldNamespace, journals: tuple[Journal, Journal]
) -> None:
    indexed, scanned = journals
    query = _with(Query(), "error", cursor=rows_of(namespace)[10].cursor)
    assert await read(indexed, query) == await read(scanned, query)
    assert indexed.index_reads == {}


async def test_journals_of_two_machines_scan(
    namespace: JournaldNamespace, journal_namespace: JournaldNamespace, tmp_path: Path
) -> None:
    """Two journald instances, two seqnum ids: journald's order is not seqnum order."""
    sender = Sender(journal_namespace)
    sender.send_many({"MESSAGE": f"error: other machine {i}"} for i in range(5))
    sender.close()
    journal_namespace.sync()
    for i, source in enumerate([namespace.directory, journal_namespace.directory]):
        for path in source.glob("*.journal"):
            shutil.copy(path, tmp_path / f"{i}-{path.name}")
    both = Journal(JournalLocation(directory=tmp_path))
    only_scan = Journal(
        JournalLocation(directory=tmp_path), JournalSettings(index_bounds=Bounds(values=0))
    )
    for journal in (both, only_scan):
        await journal.start()
    try:
        query = _with(Query(), "error")
        found = await read(both, query)
        assert len({c.split(";", 1)[0] for c in found}) == 2
        assert found == await read(only_scan, query)
        assert both.index_reads == {"seqnum-ids": 1}
    finally:
        for journal in (both, only_scan):
            await journal.close()


async def test_a_message_past_the_data_threshold_scans(
    journal_namespace: JournaldNamespace,
) -> None:
    """libsystemd hands the scan the first 64 KiB of a longer value; the index would look up
    that cut value and find nothing, so it leaves such a journal to the scan."""
    sender = Sender(journal_namespace)
    sender.send({"MESSAGE": "error: long " + "x" * 70_000 + " end"})
    sender.send({"MESSAGE": "error: short"})
    sender.close()
    journal_namespace.sync()
    location = JournalLocation(namespace=journal_namespace.name)
    indexed = Journal(location)
    scanned = Journal(location, JournalSettings(index_bounds=Bounds(values=0)))
    for journal in (indexed, scanned):
        await journal.start()
    try:
        query = _with(Query(), "^error: ")
        found = await read(indexed, query)
        assert len(found) == 2
        assert found == await read(scanned, query)
        assert indexed.index_reads == {"threshold": 1}
    finally:
        for journal in (indexed, scanned):
            await journal.close()
