"""The search layer alone: pattern checks, the batched match against one message at a
time, and the context selector against a brute-force grep."""

from __future__ import annotations

import random

import pytest

from app.core.errors import BadRequest
from app.journal.entry import Entry
from app.journal.search import Hit, Selector, compile_search, parse_search

MESSAGES: list[bytes | None] = [
    b"error: disk full",
    b"Error at start",
    b"",
    None,
    b"two\nlines error",
    b"caf\xe9 error",
    b"x",
    b"errors everywhere",
    "naïve 日本".encode(),
    b"end error",
]
PATTERNS = [
    "error",
    "^Error",
    "error$",
    "(?i)ERROR",
    r"\berror\b",
    r"\Berr",
    "x*",
    "^$",
    "(?s)disk.*start",
    "[^z]+start",
    r"\Aerror",
    r"error\z",
    "(?-m:^two)",
    "日本|naïve",
    "lines error|^x$",
]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_batched_matching_is_one_message_at_a_time(pattern: str) -> None:
    search = compile_search([pattern])
    assert search is not None
    rng = random.Random(pattern)
    for _ in range(50):
        messages = [rng.choice(MESSAGES) for _ in range(rng.randint(0, 40))]
        expected = [i for i, m in enumerate(messages) if search.matches(m)]
        assert search.matching(messages) == expected


@pytest.mark.parametrize(
    ("grep", "context", "parameter"),
    [
        (["(unclosed"], None, "grep"),
        (["x" * 1025], None, "grep"),
        (["a{1000}{1000}"], None, "grep"),
        (["a"] * 17, None, "grep"),
        (["a"], "-1", "context"),
        (["a"], "x", "context"),
        (["a"], "101", "context"),
        ([], "101", "context"),
        (["a"], "²", "context"),
    ],
)
def test_bad_searches_name_the_parameter(
    grep: list[str], context: str | None, parameter: str
) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_search(grep, context)
    assert caught.value.parameter == parameter


def test_no_pattern_is_no_search() -> None:
    assert parse_search([], None) is None
    assert parse_search([""], None) is None
    assert parse_search([], "2") is None  # context around no match: nothing to widen


def _entry(i: int, source: str, message: str | None) -> Entry:
    raw: dict[str, bytes] = {"UNIT": source.encode()}
    if message is not None:
        raw["MESSAGE"] = message.encode()
    cursor = f"s=0;i={i:x};b=0;m={i:x};t={i:x};x=0"
    return Entry(raw, cursor)


def test_selector_is_grep_per_source() -> None:
    rng = random.Random(7)
    entries = [_entry(i, rng.choice("ab"), rng.choice(["hit", "miss", None])) for i in range(300)]
    search = compile_search(["hit"], context=2)
    assert search is not None
    selector = Selector(search)
    out: list[Entry] = []
    for start in range(0, len(entries), 7):  # fed in uneven batches
        out += selector.feed(entries[start : start + 7])
    # brute force: per source, matches and two entries either side
    expected: set[str] = set()
    for source in "ab":
        mine = [e for e in entries if e.raw["UNIT"] == source.encode()]
        for k, e in enumerate(mine):
            if e.message == b"hit":
                expected |= {x.cursor for x in mine[max(0, k - 2) : k + 3]}
    assert sorted(e.cursor for e in out) == sorted(expected)
    assert len({e.cursor for e in out}) == len(out)  # each once
    assert all(isinstance(e, Hit) and e.is_match == (e.message == b"hit") for e in out)
