"""Query parameter parsing: every refusal is a 400 naming the parameter, never a 500."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from starlette.datastructures import QueryParams

from app.core.errors import BadRequest
from app.journal.params import parse_int, parse_time, parse_uint


@pytest.mark.parametrize("parse", [parse_uint, parse_int, parse_time])
@pytest.mark.parametrize("raw", ["²", "1²", "-²", "١٢"])
def test_unicode_digits_are_a_400(parse: Callable[[QueryParams, str], object], raw: str) -> None:
    """`str.isdigit` holds for `²` (which `int` refuses) and Arabic-Indic digits."""
    with pytest.raises(BadRequest) as caught:
        parse(QueryParams({"limit": raw}), "limit")
    assert caught.value.parameter == "limit"


def test_ascii_digits_still_parse() -> None:
    params = QueryParams({"n": "42", "m": "-7", "t": "1795514400000000"})
    assert parse_uint(params, "n") == 42
    assert parse_int(params, "m") == -7
    assert parse_time(params, "t") == 1795514400000000


def test_a_time_before_the_epoch_is_the_journals_start() -> None:
    """Found by the contract test: `since=0384-…` became a negative number of µs, which the
    gateway forwarded to node readers that refuse it (a merged read's 502)."""
    params = QueryParams({"since": "0384-02-07T04:31:09-02:01", "until": "1969-12-31T23:59:59Z"})
    assert parse_time(params, "since") == 0
    assert parse_time(params, "until") == 0
