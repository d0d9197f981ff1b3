"""Blocking reads on one libsystemd journal handle. Call only from a worker thread.

sd_journal handles are not thread safe; each `Handle` is used by one task at a time.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path

from systemd import journal as sd

from app.core.errors import BadRequest, JournalError
from app.journal import _fast
from app.journal.encoders import NativeFormat
from app.journal.entry import Entry
from app.journal.query import Query
from app.journal.search import Search

# Messages searched with one call (see `Search.matching_text`): small enough that stepping
# back to decode a match is cheap, large enough that the call's own cost is spread thin.
SCAN_CHUNK = 128


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
        # The inotify watch: without it `process()` never sees a file journald opened after
        # this handle (a rotation), and a reused handle stops at the old file's end.
        reader.fileno()
        return Handle(reader)

    def describe(self) -> str:
        if self.namespace is not None:
            return f"namespace {self.namespace!r}"
        if self.directory is not None:
            return f"directory {str(self.directory)!r}"
        return "system journal"


def add_matches(reader: sd._Reader, query: Query, *, extra: bytes | None = None) -> None:
    """`query`'s filters (and `extra`, a raw `FIELD=value`) as journald matches:
    (alt1 AND matches AND extra) OR (alt2 AND matches AND extra) ..."""
    for i, alternative in enumerate(query.any_of or (None,)):
        if i:
            reader.add_disjunction()
        if alternative is not None:
            _match(reader, *alternative)
        for name, value in query.matches:
            _match(reader, name, value)
        if extra is not None:
            reader.add_match(extra)


def _match(reader: sd._Reader, name: str, value: str) -> None:
    # The parsers validate names; this is the one place the binding's refusals (a name
    # libsystemd will not match, a value that is not UTF-8) become a 400, never a 500.
    try:
        reader.add_match(f"{name}={value}")
    except (ValueError, UnicodeError) as exc:
        raise BadRequest(f"journald refuses the match {name}=…: {exc}", parameter="filter") from exc


class _At(enum.Enum):
    HEAD = "head"  # before the first entry: next() gives the first
    ON = "on"  # on an entry (consumed): next() gives the one after it


@dataclass(frozen=True, slots=True)
class Skipped:
    next: int
    prev: int


@dataclass(frozen=True, slots=True)
class Encoded:
    """One `read_encoded` call: entries stepped over, entries encoded (inside the window
    and the limit), their bytes, the realtime of the last stepped over, the journal's end."""

    looked: int
    emitted: int
    data: bytes
    last_realtime: int | None
    ended: bool


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
            try:
                add_matches(r, query)
            except BadRequest:
                r.flush_matches()
                raise
        self._pending = None
        self._head()

    def usage(self) -> int:
        """The bytes of the files this handle reads (sd_journal_get_usage)."""
        used: int = self._r.get_usage()
        return used

    def data_threshold(self) -> int:
        threshold: int = self._r.data_threshold
        return threshold

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
        if query.search is not None:
            # With grep=, skips count matches: `skip_prev=20` is the last 20 matches.
            skipped_next = self._forward_matches(query.skip_next, query.search)
            skipped_prev = self._back_matches(query.skip_prev, query.search)
        else:
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

    def _message(self) -> bytes | None:
        try:
            value: bytes = self._r._get("MESSAGE")
        except KeyError:
            return None
        return value

    def _forward_matches(self, n: int, search: Search) -> int:
        moved = 0
        while moved < n and self._r._next():
            self._at = _At.ON
            if search.matches(self._message()):
                moved += 1
        return moved

    def _back_matches(self, n: int, search: Search) -> int:
        moved = 0
        while moved < n and self._at is _At.ON:
            hit = search.matches(self._message())
            if not self._r._previous():
                self._head()
            if hit:
                moved += 1
        return moved

    def around(self, n: int, reverse: bool) -> list[Entry]:
        """Up to `n` entries just before the read position in read order (what a search
        needs to rebuild its context), in read order; the position is kept."""
        r = self._r
        if n <= 0 or self._at is not _At.ON or self._pending is not None:
            return []
        here = r._get_cursor()
        out: list[Entry] = []
        if reverse:
            while len(out) < n and r._next():
                out.append(self.entry())
        else:
            out.append(self.entry())
            while len(out) < n and r._previous():
                out.append(self.entry())
        r.seek_cursor(here)
        r._next()
        return out[::-1]

    # reading ------------------------------------------------------------------------

    def scan_forward(self, max_scanned: int, search: Search) -> tuple[list[Entry], str | None]:
        """The matches among the next `max_scanned` entries, and the cursor of the last one
        looked at, or None when the journal ended. The scan collects MESSAGE alone, in C
        and without the GIL, and searches a chunk of messages with one RE2 call; only
        matches are decoded, found again by stepping back, which is what makes a rare
        match cheap to find."""
        found: list[Entry] = []
        scanned = 0
        if self._pending is not None:
            pending, self._pending = self._pending, None
            scanned += 1
            if search.matches(pending.searched_message):
                found.append(pending)
        r = self._r
        ended = False
        while scanned < max_scanned and not ended:
            want = min(SCAN_CHUNK, max_scanned - scanned)
            text, starts, missing, ended = _fast.messages(r, want, False, False)
            count = len(starts) - 1
            if not count:
                break
            scanned += count
            self._at = _At.ON
            hits = search.matching_text(text, starts, missing)
            if hits:
                found += self._collect(count, hits, forward=True)
        if ended or scanned < max_scanned:
            return found, None
        cursor: str = r._get_cursor()
        return found, cursor

    def scan_backward(self, max_scanned: int, search: Search) -> tuple[list[Entry], str | None]:
        """As `scan_forward`, newest first."""
        found: list[Entry] = []
        if self._at is _At.HEAD:
            return found, None
        r = self._r
        scanned = 0
        at_head = False
        while scanned < max_scanned and not at_head:
            want = min(SCAN_CHUNK, max_scanned - scanned)
            text, starts, missing, at_head = _fast.messages(r, want, True, self._include_current)
            self._include_current = False
            count = len(starts) - 1
            scanned += count
            hits = search.matching_text(text, starts, missing)
            if hits:
                found += self._collect(count, hits, forward=False)
            if not count:
                break
        if at_head or scanned < max_scanned:
            self._head()
            return found, None
        cursor: str = r._get_cursor()
        return found, cursor

    def _collect(self, count: int, hits: list[int], *, forward: bool) -> list[Entry]:
        """The entries at `hits` (ascending indices in read order) of the `count` just
        scanned, the handle being on the last of them; it is left there. Jumps between
        hits are one libsystemd skip each."""
        r = self._r
        here = r._get_cursor()
        out: list[Entry] = []
        i = count - 1
        back = r._previous if forward else r._next
        for hit in reversed(hits):
            if hit != i:
                if not back(i - hit):
                    break
                i = hit
            out.append(self.entry())
        r.seek_cursor(here)
        r._next()
        out.reverse()
        return out

    def read_encoded(
        self,
        max_entries: int,
        fmt: NativeFormat,
        *,
        reverse: bool,
        since: int | None,
        until: int | None,
        limit: int | None,
    ) -> Encoded:
        """`read_forward`/`read_backward`, then the time window, the limit and the
        encoder, in C: what those steps give, in one call and without a Python object per
        entry. Not after `resume_after` (its pending entry is a Python one)."""
        if self._pending is not None:
            raise RuntimeError("read_encoded after resume_after")
        if reverse and self._at is _At.HEAD:
            return Encoded(0, 0, b"", None, True)
        include = reverse and self._include_current
        looked, emitted, data, last, ended = _fast.read(
            self._r,
            max_entries,
            fmt,
            reverse,
            include,
            -1 if since is None else since,
            -1 if until is None else until,
            -1 if limit is None else limit,
        )
        if looked:
            if reverse:
                self._include_current = False
            else:
                self._at = _At.ON
        if reverse and ended:
            self._head()
        return Encoded(looked, emitted, data, last if looked else None, ended)

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
