"""Types of app/journal/_fast.c (built by `pip install`)."""

from typing import Any

def read(
    reader: Any,
    max_entries: int,
    fmt: int,
    reverse: bool,
    include_current: bool,
    since: int,
    until: int,
    limit: int,
    /,
) -> tuple[int, int, bytes, int, bool]: ...
def messages(
    reader: Any, max_entries: int, reverse: bool, include_current: bool, /
) -> tuple[bytes, list[int], list[int], bool]: ...
def unique_begin(reader: Any, field: str, /) -> None: ...
def unique_next(reader: Any, max_values: int, /) -> tuple[bytes, list[int], int, bool]: ...
