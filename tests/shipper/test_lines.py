from __future__ import annotations

import pytest

from app.shipper.lines import Break, Line, LineSplitter

N, M, E = Break.NEWLINE, Break.LINE_MAX, Break.EOF


def split(chunks: list[bytes], *, line_max: int = 1024) -> list[Line]:
    splitter = LineSplitter(line_max=line_max)
    lines = [line for chunk in chunks for line in splitter.feed(chunk)]
    return lines + splitter.finish()


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        ([], []),
        ([b""], []),
        ([b"a\n"], [(b"a", N)]),
        ([b"a\nb\n"], [(b"a", N), (b"b", N)]),
        ([b"\n\n"], [(b"", N), (b"", N)]),
        ([b"partial"], [(b"partial", E)]),
        ([b"a\npartial"], [(b"a", N), (b"partial", E)]),
        ([b"sp", b"lit\n"], [(b"split", N)]),
        ([b"a", b"b", b"c", b"\nd"], [(b"abc", N), (b"d", E)]),
        ([b"ab", b"\n", b"\n"], [(b"ab", N), (b"", N)]),
        # Only \n ends a line; every other byte is kept.
        ([b"dos\r\n"], [(b"dos\r", N)]),
        ([b"cr\ronly\n"], [(b"cr\ronly", N)]),
        ([b"\xff\xfe bad \xc3\n"], [(b"\xff\xfe bad \xc3", N)]),
        ([b"nul\x00\n"], [(b"nul\x00", N)]),
        ([b"\xc3", b"\xa9\n"], [(b"\xc3\xa9", N)]),
    ],
)
def test_split(chunks: list[bytes], expected: list[Line]) -> None:
    assert split(chunks) == expected


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        ([b"abcd\n"], [(b"abcd", N)]),
        ([b"abcde\n"], [(b"abcd", M), (b"e", N)]),
        ([b"abcdefgh\n"], [(b"abcd", M), (b"efgh", N)]),
        ([b"abcdefghi"], [(b"abcd", M), (b"efgh", M), (b"i", E)]),
        ([b"ab", b"cd", b"\n"], [(b"abcd", N)]),
        ([b"ab", b"cde", b"\n"], [(b"abcd", M), (b"e", N)]),
        ([b"abc", b"defghij\nk"], [(b"abcd", M), (b"efgh", M), (b"ij", N), (b"k", E)]),
        ([b"abcd", b"\n"], [(b"abcd", N)]),
        ([b"ab", b"cdefghijk"], [(b"abcd", M), (b"efgh", M), (b"ijk", E)]),
        ([b"x\nabcdefgh\ny"], [(b"x", N), (b"abcd", M), (b"efgh", N), (b"y", E)]),
    ],
)
def test_lines_over_line_max_are_cut(chunks: list[bytes], expected: list[Line]) -> None:
    assert split(chunks, line_max=4) == expected


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 4096])
def test_any_chunking_gives_the_same_lines(size: int) -> None:
    data = b"".join(b"line %d %s\n" % (i, b"x" * (i % 50)) for i in range(500)) + b"tail"
    chunks = [data[i : i + size] for i in range(0, len(data), size)]

    lines = split(chunks, line_max=30)

    assert lines == split([data], line_max=30)
    assert b"".join(line + (b"\n" if end is N else b"") for line, end in lines) == data


def test_finish_empties_the_splitter() -> None:
    splitter = LineSplitter()
    splitter.feed(b"abc")
    assert splitter.finish() == [(b"abc", E)]
    assert splitter.finish() == []


def test_line_max_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        LineSplitter(line_max=0)
