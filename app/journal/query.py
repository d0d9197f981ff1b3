"""What a reader asks of the journal, independent of HTTP."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from app.journal.entry import Entry
from app.journal.search import Search

Predicate = Callable[[Entry], bool]


@dataclass(frozen=True, slots=True)
class Query:
    """A journal read, with dcos-log's positioning semantics.

    Positions are gaps between entries. `cursor` places us just after that entry (just
    before it when reading in reverse); `skip_next`/`skip_prev` then move forward/back.
    With no cursor the start is the head, or the tail when `skip_prev` is given (so
    `skip_prev=N` means "the last N entries"), or the tail when reading in reverse.
    `matches` follow journald: values of one field are ORed, fields are ANDed.
    """

    matches: tuple[tuple[str, str], ...] = ()
    # Alternatives ORed with each other and ANDed with `matches`: v2's unit lookup is
    # `UNIT=name OR _SYSTEMD_UNIT=name`.
    any_of: tuple[tuple[str, str], ...] = ()
    cursor: str | None = None
    cursor_param: str = "cursor"  # where the cursor came from, for error messages
    skip_next: int = 0
    skip_prev: int = 0
    limit: int | None = None
    reverse: bool = False
    since: int | None = None  # realtime µs, inclusive
    until: int | None = None  # realtime µs, inclusive
    # grep=/context=: skips and limit then count matches (app/journal/search.py).
    search: Search | None = None
    _groups: dict[str, frozenset[bytes]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        groups: dict[str, set[bytes]] = {}
        for name, value in self.matches:
            groups.setdefault(name, set()).add(value.encode())
        object.__setattr__(self, "_groups", {k: frozenset(v) for k, v in groups.items()})

    def only_value(self, name: str) -> bytes | None:
        """The one value `name` must have to match, if the matches fix it."""
        allowed = self._groups.get(name)
        if allowed is None or len(allowed) != 1:
            return None
        return next(iter(allowed))

    def matches_entry(self, entry: Entry) -> bool:
        """The journald match semantics, applied in Python (for the shared tail)."""
        if self.any_of and not any(
            entry.field_bytes(name) == value.encode() for name, value in self.any_of
        ):
            return False
        for name, allowed in self._groups.items():
            value = entry.field_bytes(name)
            if value is None or value not in allowed:
                return False
        return self.in_time_window(entry)

    def in_time_window(self, entry: Entry) -> bool:
        if self.since is not None and entry.realtime < self.since:
            return False
        return self.until is None or entry.realtime <= self.until
