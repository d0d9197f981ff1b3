from __future__ import annotations

import pytest

from app.journal.entry import Entry
from app.journal.query import Query

CURSOR = "s=1;i=1;b=1;m=1;t=64;x=1"  # realtime 0x64 = 100


def entry(**fields: str) -> Entry:
    return Entry({k: v.encode() for k, v in fields.items()}, CURSOR)


@pytest.mark.parametrize(
    ("query", "fields", "expected"),
    [
        (Query(), {"A": "1"}, True),
        (Query(matches=(("A", "1"),)), {"A": "1"}, True),
        (Query(matches=(("A", "1"),)), {"A": "2"}, False),
        (Query(matches=(("A", "1"),)), {"B": "1"}, False),
        (Query(matches=(("A", "1"), ("A", "2"))), {"A": "2"}, True),  # same field: OR
        (Query(matches=(("A", "1"), ("B", "2"))), {"A": "1", "B": "3"}, False),  # fields: AND
        (Query(matches=(("A", ""),)), {"A": ""}, True),
        (Query(any_of=(("UNIT", "x"), ("_SYSTEMD_UNIT", "x"))), {"_SYSTEMD_UNIT": "x"}, True),
        (Query(any_of=(("UNIT", "x"), ("_SYSTEMD_UNIT", "x"))), {"UNIT": "x"}, True),
        (Query(any_of=(("UNIT", "x"), ("_SYSTEMD_UNIT", "x"))), {"UNIT": "y"}, False),
        (
            Query(matches=(("S", "1"),), any_of=(("UNIT", "x"), ("_SYSTEMD_UNIT", "x"))),
            {"UNIT": "x", "S": "2"},
            False,
        ),
        (Query(since=100), {}, True),
        (Query(since=101), {}, False),
        (Query(until=99), {}, False),
    ],
)
def test_matches_entry(query: Query, fields: dict[str, str], expected: bool) -> None:
    assert query.matches_entry(entry(**fields)) is expected
