"""dcos-log positioning on a real journal, checked against a brute-force model.

The model treats positions as gaps between the matching entries (see `Query`).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator

import pytest

from app.core.errors import BadRequest
from app.devcluster.journald import JournaldNamespace
from app.journal.entry import Entry
from app.journal.handle import JournalLocation
from app.journal.query import Query
from app.journal.source import Journal, JournalSettings
from tests.support.journal import Sender

N = 40


@pytest.fixture
async def journal(journal_namespace: JournaldNamespace) -> AsyncIterator[Journal]:
    sender = Sender(journal_namespace)
    sender.send_many(
        {"MESSAGE": f"line {i}", "SEQ": str(i), "GROUP": f"g{i % 3}", "KIND": f"k{i % 2}"}
        for i in range(N)
    )
    sender.close()
    journal_namespace.sync()
    # A small read batch exercises the batch boundaries.
    j = Journal(JournalLocation(namespace=journal_namespace.name), JournalSettings(read_batch=7))
    await j.start()
    yield j
    await j.close()


async def read_all(journal: Journal, query: Query) -> tuple[list[Entry], int, int]:
    reading = await journal.open(query)
    out: list[Entry] = []
    async for batch in reading.batches():
        out.extend(batch)
    return out, reading.skipped.next, reading.skipped.prev


def model(everything: list[Entry], q: Query) -> tuple[list[str], int, int]:
    rows = [e for e in everything if q.matches_entry(e)]
    cursors = [e.cursor for e in rows]
    if q.cursor is not None:
        k = cursors.index(q.cursor)
        g = k if q.reverse else k + 1
    elif (q.skip_prev > 0 and q.skip_next == 0) or (q.reverse and q.skip_next == 0):
        g = len(rows)
    else:
        g = 0
    moved_next = min(q.skip_next, len(rows) - g)
    g += moved_next
    moved_prev = min(q.skip_prev, g)
    g -= moved_prev
    out = rows[:g][::-1] if q.reverse else rows[g:]
    if q.limit:
        out = out[: q.limit]
    return [e.cursor for e in out], moved_next, moved_prev


MATCHES = [
    (),
    (("GROUP", "g1"),),
    (("GROUP", "g1"), ("GROUP", "g2")),
    (("GROUP", "g0"), ("KIND", "k1")),
]


@pytest.mark.parametrize("matches", MATCHES)
async def test_positioning_matches_model(
    journal: Journal, matches: tuple[tuple[str, str], ...]
) -> None:
    everything, _, _ = await read_all(journal, Query())
    assert sum(1 for e in everything if e.fields.get("SEQ") is not None) == N
    matching = [e for e in everything if Query(matches=matches).matches_entry(e)]
    cursors: list[str | None] = [
        None,
        matching[0].cursor,
        matching[len(matching) // 2].cursor,
        matching[-1].cursor,
    ]
    cases = itertools.product(cursors, (0, 1, 3, 500), (0, 1, 4, 500), (None, 1, 5), (False, True))
    checked = 0
    for cursor, skip_next, skip_prev, limit, reverse in cases:
        q = Query(
            matches=matches,
            cursor=cursor,
            skip_next=skip_next,
            skip_prev=skip_prev,
            limit=limit,
            reverse=reverse,
        )
        got, moved_next, moved_prev = await read_all(journal, q)
        assert ([e.cursor for e in got], moved_next, moved_prev) == model(everything, q), q
        checked += 1
    assert checked == 4 * 4 * 4 * 3 * 2


async def test_skip_prev_is_the_last_n(journal: Journal) -> None:
    got, _, moved = await read_all(journal, Query(skip_prev=5))
    assert [e.fields["SEQ"] for e in got] == [str(i) for i in range(N - 5, N)]
    assert moved == 5


async def test_cursor_then_skip_prev_gives_entry_before_then_cursor(journal: Journal) -> None:
    everything, _, _ = await read_all(journal, Query(matches=(("KIND", "k0"),)))
    c = everything[4]
    q = Query(matches=(("KIND", "k0"),), cursor=c.cursor, skip_prev=2, limit=2)
    got, _, _ = await read_all(journal, q)
    assert [e.cursor for e in got] == [everything[3].cursor, c.cursor]


async def test_since_until_window(journal: Journal) -> None:
    everything, _, _ = await read_all(journal, Query(matches=(("GROUP", "g0"),)))
    lo, hi = everything[2].realtime, everything[5].realtime
    got, _, _ = await read_all(journal, Query(matches=(("GROUP", "g0"),), since=lo, until=hi))
    assert [e.cursor for e in got] == [e.cursor for e in everything[2:6]]


async def test_unknown_cursor_is_a_bad_request(journal: Journal) -> None:
    everything, _, _ = await read_all(journal, Query())
    real = everything[3].cursor
    forged = real.replace(";i=", ";i=fff")
    with pytest.raises(BadRequest) as err:
        await journal.open(Query(cursor=forged))
    assert err.value.parameter == "cursor"
    # The handle went back to the pool: the next read works.
    got, _, _ = await read_all(journal, Query(cursor=real, limit=1))
    assert got[0].cursor == everything[4].cursor


async def test_a_match_journald_refuses_is_a_bad_request(journal: Journal) -> None:
    # Past the parsers (a Query built by hand): the journal boundary maps the binding's
    # ValueError to a 400 naming the parameter, and the handle stays usable.
    with pytest.raises(BadRequest) as err:
        await journal.open(Query(matches=(("__CURSOR", "x"),)))
    assert err.value.parameter == "filter"
    got, _, _ = await read_all(journal, Query(limit=1))
    assert len(got) == 1


async def test_unique_values(journal: Journal) -> None:
    assert await journal.unique("GROUP") == ["g0", "g1", "g2"]
    assert await journal.unique("NOPE") == []
