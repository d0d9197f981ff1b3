"""Blocking reads on one libsystemd journal handle. Call only from a worker thread.

sd_journal handles are not thread safe; each `Handle` is used by one task at a time.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from systemd import journal as sd

from app.core.errors import BadRequest, JournalError
from app.journal.entry import Entry
from app.journal.query import Query


@dataclass(frozen=True, slots=True)
class JournalLocation:
    """Which journal a node reader serves: a namespace, a directory, or the system's."""

    namespace: str | None = None
    directory: Path | None = None

    def open(self) -> Handle:
        try:
            if self.namespace is not None:
                reader = sd._Reader(namespace=self.namespace)
            elif self.directory is not None:
                reader = sd._Reader(0, str(self.directory))  # flags must be 0 with a path
            else:
                reader = sd._Reader(sd.LOCAL_ONLY)
        except (OSError, ValueError) as exc:
            raise JournalError(f"Error opening journal {self.describe()}: {exc}") from exc
        return Handle(reader)

    def describe(self) -> str:
        if self.namespace is not None:
            return f"namespace {self.namespace!r}"
        if self.directory is not None:
            return f"directory {str(self.directory)!r}"
        return "system journal"


class _At(enum.Enum):
    HEAD = "head"  # before the first entry: next() gives the first
    ON = "on"  # on an entry (consumed): next() gives the one after it


@dataclass(frozen=True, slots=True)
class Skipped:
    next: int
    prev: int


class Handle:
    def __init__(self, reader: sd._Reader) -> None:
        self._r = reader
        self._at = _At.HEAD
        self._pending: Entry | None = None  # read by a seek, to emit first
        self._include_current = True  # reverse reads start with the entry we are on

    def close(self) -> None:
        self._r.close()

    def fileno(self) -> int:
        fd: int = self._r.fileno()
        return fd

    def process(self) -> int:
        state: int = self._r.process()
        return state

    def entry(self) -> Entry:
        return Entry(self._r._get_all(), self._r._get_cursor())

    # positioning --------------------------------------------------------------------

    def reset(self, query: Query | None = None) -> None:
        r = self._r
        r.flush_matches()
        if query is not None:
            # journald: (alt1 AND matches) OR (alt2 AND matches) ...
            for i, alternative in enumerate(query.any_of or (None,)):
                if i:
                    r.add_disjunction()
                if alternative is not None:
                    self._match(*alternative)
                for name, value in query.matches:
                    self._match(name, value)
        self._pending = None
        self._head()

    def _match(self, name: str, value: str) -> None:
        # The parsers validate names; this is the one place the binding's refusals (a name
        # libsystemd will not match, a value that is not UTF-8) become a 400, never a 500.
        try:
            self._r.add_match(f"{name}={value}")
        except (ValueError, UnicodeError) as exc:
            self._r.flush_matches()
            raise BadRequest(
                f"journald refuses the match {name}=…: {exc}", parameter="filter"
            ) from exc

    def position(self, query: Query) -> Skipped:
        """Place the handle where `query` starts reading; returns the skips made."""
        self.reset(query)
        if query.cursor is not None:
            self._seek_cursor(query.cursor, query.cursor_param)
            if query.reverse:
                self._back(1)
        elif (query.skip_prev > 0 and query.skip_next == 0) or (
            query.reverse and query.skip_next == 0
        ):
            if query.until is not None:
                self._seek_before_realtime(query.until + 1)
            else:
                self._tail()
        elif query.since is not None:
            self._seek_before_realtime(query.since)
        skipped_next = self._forward(query.skip_next)
        skipped_prev = self._back(query.skip_prev)
        self._include_current = True
        return Skipped(skipped_next, skipped_prev)

    def anchor(self) -> Entry | None:
        """The entry just before the read position (None at the head)."""
        return self.entry() if self._at is _At.ON else None

    def resume_after(self, cursor: str) -> None:
        """Continue just after `cursor`; if that entry is gone, from the next one that is."""
        self._pending = None
        try:
            self._r.seek_cursor(cursor)
        except (OSError, ValueError) as exc:
            raise JournalError(f"cannot resume after cursor: {exc}") from exc
        if not self._r._next():
            self._tail()
            return
        self._at = _At.ON
        if not self._test_cursor(cursor):
            self._pending = self.entry()

    def _seek_cursor(self, cursor: str, param: str) -> None:
        try:
            self._r.seek_cursor(cursor)
        except ValueError as exc:
            raise BadRequest(
                f"Incorrect cursor string in `{param}`: {cursor}", parameter=param
            ) from exc
        if not self._r._next() or not self._test_cursor(cursor):
            raise BadRequest(
                f"Cursor in `{param}` not found in this journal (or it does not match the "
                f"filters): {cursor}",
                parameter=param,
            )
        self._at = _At.ON

    def _test_cursor(self, cursor: str) -> bool:
        try:
            return bool(self._r.test_cursor(cursor))
        except OSError:
            # libsystemd reports a mismatch as an error on some versions.
            return False

    def _head(self) -> None:
        self._r.seek_head()
        self._at = _At.HEAD

    def _tail(self) -> None:
        # seek_tail()+next() lands on the last entry in systemd 252, so step back onto it.
        self._r.seek_tail()
        if self._r._previous():
            self._at = _At.ON
        else:
            self._head()

    def _seek_before_realtime(self, usec: int) -> None:
        self._r.seek_realtime(usec)
        if not self._r._next():
            self._tail()
        elif self._r._previous():
            self._at = _At.ON
        else:
            self._head()

    def _forward(self, n: int) -> int:
        moved = 0
        while moved < n and self._r._next():
            moved += 1
            self._at = _At.ON
        return moved

    def _back(self, n: int) -> int:
        moved = 0
        while moved < n and self._at is _At.ON:
            if not self._r._previous():
                self._head()
            moved += 1
        return moved

    # reading ------------------------------------------------------------------------

    def read_forward(self, max_entries: int) -> list[Entry]:
        batch: list[Entry] = []
        if self._pending is not None:
            batch.append(self._pending)
            self._pending = None
        r = self._r
        get_all, get_cursor = r._get_all, r._get_cursor
        while len(batch) < max_entries and r._next():
            batch.append(Entry(get_all(), get_cursor()))
        if batch:
            self._at = _At.ON
        return batch

    def read_backward(self, max_entries: int) -> list[Entry]:
        """Entries before the position, newest first."""
        batch: list[Entry] = []
        if self._at is _At.HEAD:
            return batch
        if self._include_current:
            self._include_current = False
            batch.append(self.entry())
        r = self._r
        while len(batch) < max_entries:
            if not r._previous():
                self._head()
                break
            batch.append(self.entry())
        return batch

    def unique(self, field: str) -> list[str]:
        values: set[bytes] | set[str] = self._r.query_unique(field)
        out = sorted(v.decode(errors="replace") if isinstance(v, bytes) else v for v in values)
        return out
