"""HTTP query parameters → `Query`, with dcos-log's rules and 400s that name the parameter.

Reference §1.3 (v1) and §2.2 (v2). Where dcos-log answered 500 (bad or unknown cursors)
we answer 400; where its filters could widen a task route to other tasks, they narrow.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from starlette.datastructures import QueryParams

from app.core.errors import BadRequest
from app.journal.cursor import parse_cursor
from app.journal.query import Query
from app.journal.search import Search, parse_search

UINT64_MAX = 2**64 - 1
INT64_MAX = 2**63 - 1
# journald field names: upper case letters, digits and underscores, not starting with a digit;
# names starting `__` are the journal's own (`__CURSOR`, `__REALTIME_TIMESTAMP`), never matchable
# (libsystemd's match_is_valid refuses them).
_FIELD = re.compile(r"^(?!__)[A-Z_][A-Z0-9_]{0,63}$")
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def _digits(raw: str) -> bool:
    """ASCII digits only: `str.isdigit` is also true of `²`, which `int` refuses (a 500)."""
    return raw.isascii() and raw.isdigit()


def _one(params: QueryParams, name: str) -> str | None:
    value = params.get(name)
    return value if value else None


def parse_uint(params: QueryParams, name: str) -> int:
    raw = _one(params, name)
    if raw is None:
        return 0
    if not _digits(raw) or int(raw) > UINT64_MAX:
        raise BadRequest(
            f"Error parsing parameter `{name}`: {raw!r} is not an unsigned 64-bit integer",
            parameter=name,
        )
    return int(raw)


def parse_int(params: QueryParams, name: str) -> int:
    raw = _one(params, name)
    if raw is None:
        return 0
    digits = raw[1:] if raw[:1] in "+-" else raw
    if not _digits(digits) or abs(int(raw)) > INT64_MAX:
        raise BadRequest(
            f"unable to parse {name} parameter: {raw!r} is not a 64-bit integer", parameter=name
        )
    return int(raw)


def parse_bool(params: QueryParams, name: str) -> bool:
    raw = _one(params, name)
    if raw is None or raw in _FALSE:
        return False
    if raw in _TRUE:
        return True
    raise BadRequest(f"Error parsing parameter `{name}`: {raw!r} is not a boolean", parameter=name)


def parse_time(params: QueryParams, name: str) -> int | None:
    """RFC 3339 (`2026-11-24T10:00:00Z`) or unix microseconds → realtime µs."""
    raw = _one(params, name)
    if raw is None:
        return None
    if _digits(raw):
        return int(raw)
    try:
        parsed = datetime.fromisoformat(raw.replace("z", "Z"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise BadRequest(
            f"Error parsing parameter `{name}`: {raw!r} is neither RFC 3339 with a time zone "
            "nor unix microseconds",
            parameter=name,
        )
    # journald's clock starts at the epoch: an earlier time is its start (a negative number
    # would reach a node reader as a value it refuses, a merged read's 502).
    return max(0, int(parsed.timestamp() * 1_000_000))


def parse_filters(
    values: Sequence[str], *, lowercase_message: bool = False
) -> list[tuple[str, str]]:
    """`FIELD:value` pairs; FIELD is upper-cased. dcos-log split on every `:` and refused
    values containing one; we split on the first, so such values can be matched."""
    out = []
    for raw in values:
        name, sep, value = raw.partition(":")
        name = name.upper()
        if not sep or not _FIELD.match(name):
            prefix = "incorrect" if lowercase_message else "Incorrect"
            raise BadRequest(
                f"{prefix} filter parameter format, must be ?filter=key:value "
                f"with key a journal field name. Got {raw}",
                parameter="filter",
            )
        out.append((name, value))
    return out


def within_path(
    path_matches: Sequence[tuple[str, str]], filters: Sequence[tuple[str, str]]
) -> list[tuple[str, str]]:
    """The path's matches ANDed with the filters: a filter can only narrow a task's lines.

    journald ORs values of one field, so `filter=CONTAINER_ID:other` beside the path's
    CONTAINER_ID would widen the read to another task's lines (dcos-log's behaviour). A
    filter on a field the path fixes is dropped when one of its values is the path's, and
    a 400 otherwise: nothing could match.
    """
    fixed = dict(path_matches)
    narrowing = [(name, value) for name, value in filters if name not in fixed]
    for name, path_value in fixed.items():
        values = [value for field, value in filters if field == name]
        if values and path_value not in values:
            raise BadRequest(
                f"filter {name}:{values[0]} contradicts the path's {name}={path_value}: "
                "a filter can only narrow a task's lines",
                parameter="filter",
            )
    return [*path_matches, *narrowing]


def validate_path_value(name: str, value: str) -> str:
    if not value or "\n" in value or "\x00" in value:
        raise BadRequest(f"invalid {name} in path", parameter=name)
    return value


def search_params(params: QueryParams) -> Search | None:
    """`grep=RE` (repeatable, any matches) and `context=N` (app/journal/search.py)."""
    return parse_search(params.getlist("grep"), _one(params, "context"))


def v1_query(
    params: QueryParams,
    *,
    stream: bool,
    last_event_id: str | None,
    path_matches: Sequence[tuple[str, str]] = (),
) -> Query:
    limit = parse_uint(params, "limit")
    skip_next = parse_uint(params, "skip_next")
    skip_prev = parse_uint(params, "skip_prev")
    reverse_raw = _one(params, "read_reverse")
    if stream and limit > 0:
        raise BadRequest("Unable to stream events with `limit` parameter", parameter="limit")
    if stream and reverse_raw is not None:
        raise BadRequest(
            "Unable to stream events with `read_reverse` parameter", parameter="read_reverse"
        )
    reverse = parse_bool(params, "read_reverse")
    cursor_raw = _one(params, "cursor")
    cursor = parse_cursor(cursor_raw) if cursor_raw else None
    if stream and last_event_id:
        # The id the client saw last: resume right after it, skips off ("no duplicates").
        cursor = parse_cursor(last_event_id, parameter="Last-Event-ID", unescape=False)
        skip_next = skip_prev = 0
    matches = within_path(path_matches, parse_filters(params.getlist("filter")))
    return Query(
        matches=tuple(matches),
        cursor=cursor,
        cursor_param="Last-Event-ID" if stream and last_event_id else "cursor",
        skip_next=skip_next,
        skip_prev=skip_prev,
        limit=limit or None,
        reverse=reverse,
        since=parse_time(params, "since"),
        until=parse_time(params, "until"),
        search=search_params(params),
    )


def v2_query(
    params: QueryParams,
    *,
    last_event_id: str | None,
    unit: str | None = None,
    path_matches: Sequence[tuple[str, str]] = (),
) -> Query:
    raw_limit = _one(params, "limit")
    if raw_limit is not None and (not _digits(raw_limit) or int(raw_limit) > UINT64_MAX):
        raise BadRequest(
            f"unable to parse limit parameter: {raw_limit!r} is not an unsigned integer",
            parameter="limit",
        )
    limit = int(raw_limit) if raw_limit else 0
    skip = parse_int(params, "skip")
    filters = parse_filters(params.getlist("filter"), lowercase_message=True)
    matches = tuple(within_path(path_matches, filters))
    any_of = (("UNIT", unit), ("_SYSTEMD_UNIT", unit)) if unit else ()
    cursor: str | None = None
    skip_next, skip_prev = (skip, 0) if skip > 0 else (0, -skip)
    raw_cursor = _one(params, "cursor")
    if last_event_id:
        # Last-Event-ID wins over ?cursor and resumes right after it.
        cursor = parse_cursor(last_event_id, parameter="Last-Event-ID", unescape=False)
        skip_next = skip_prev = 0
    elif raw_cursor == "BEG":
        skip_prev = 0  # from the head, a backwards skip has nowhere to go
    elif raw_cursor == "END":
        skip_prev = max(skip_prev, 1)  # dcos-log: END is skip_prev(1), the last entry
    elif raw_cursor:
        cursor = parse_cursor(raw_cursor)
    return Query(
        matches=matches,
        any_of=any_of,
        cursor=cursor,
        cursor_param="Last-Event-ID" if last_event_id else "cursor",
        skip_next=skip_next,
        skip_prev=skip_prev,
        limit=limit or None,
        since=parse_time(params, "since"),
        until=parse_time(params, "until"),
        search=search_params(params),
    )
