"""A search through journald's own index of MESSAGE values (issue 14), instead of a scan.

journald stores each distinct field value once, as a data object listed under its field and
pointing at the entries that carry it. A `grep=` range read must look at every entry; reading
the distinct MESSAGE values of each file instead (`sd_journal_enumerate_unique` on a handle
opened on that file alone: across files libsystemd checks every value against every earlier
file, 12.7 µs a value on a 12-file journal against 0.16) costs a fraction of stepping through
the entries, and the few values that match then find their entries through `MESSAGE=<value>`
matches. The result is the scan's: the same filters, the entry's first MESSAGE matched (as
`sd_journal_get_data` gives it), seqnum order. Whatever this cannot prove equal falls back to
the scan: files other than the read handle's, several seqnum ids (journals of several
machines), a value at libsystemd's data threshold (the scan sees it cut), more matching values
or entries than the bounds.

The index costs ~0.3 µs per value of the whole journal, the scan ~1.5 µs per entry it steps
through, and a read with filters or a limit may step through few. So a read scans first, as
many entries as a share of the journal's; only if that does not finish it does the index
answer the rest: its matches beyond the last entry scanned.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from systemd import _reader

from app.journal import _fast
from app.journal.cursor import seqnum_of
from app.journal.entry import Entry
from app.journal.handle import Handle, JournalLocation, add_matches
from app.journal.query import Query
from app.journal.search import Search

# More matching values or entries than this: the scan is as cheap, and the index would hold
# every match in memory before sending the first.
MAX_VALUES = 10_000
MAX_ENTRIES = 10_000
# Work per step on the journal thread (the client's departure is noticed between steps).
VALUES_PER_STEP = 100_000
LOOKUPS_PER_STEP = 200
# A read scans this share of the journal's entries before it turns to the index.
SCAN_FIRST = 0.05
# journal-file(5) / systemd's JOURNAL_FILE_FORMAT.md: the header's signature and `n_entries`.
SIGNATURE = b"LPKSHHRH"
N_ENTRIES = struct.Struct("<Q")
N_ENTRIES_OFFSET = 152
MACHINE_ID = Path("/etc/machine-id")
JOURNAL_ROOTS = (Path("/run/log/journal"), Path("/var/log/journal"))
_MACHINE_DIR = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True, slots=True)
class Bounds:
    values: int = MAX_VALUES
    entries: int = MAX_ENTRIES
    scan_first: float = SCAN_FIRST


def indexable(query: Query, *, follow: bool) -> bool:
    """The reads the index answers exactly as the scan: a whole range with `grep` alone."""
    search = query.search
    return (
        search is not None
        and not search.context
        and not follow
        and query.cursor is None
        and query.skip_next == 0
        and query.skip_prev == 0
        and query.since is None
        and query.until is None
    )


def journal_files(location: JournalLocation) -> list[Path]:
    """The files libsystemd opens for `location` (the read handle's usage checks it)."""
    try:
        machine_id = MACHINE_ID.read_text().strip()
    except OSError:
        return []
    if location.directory is not None:
        # sd_journal_open_directory reads the machines' directories in it too.
        dirs = [location.directory, *_machine_dirs(location.directory)]
    elif location.namespace is not None:
        dirs = [root / f"{machine_id}.{location.namespace}" for root in JOURNAL_ROOTS]
    else:
        dirs = [*JOURNAL_ROOTS, *(root / machine_id for root in JOURNAL_ROOTS)]
    return sorted(p for d in dirs for p in _files_in(d))


def _machine_dirs(directory: Path) -> Iterator[Path]:
    try:
        for path in directory.iterdir():
            if _MACHINE_DIR.fullmatch(path.name) and path.is_dir():
                yield path
    except OSError:
        return


def _files_in(directory: Path) -> Iterator[Path]:
    try:
        for path in directory.iterdir():
            if path.name.endswith((".journal", ".journal~")) and path.is_file():
                yield path
    except OSError:
        return


def _usage(files: list[Path]) -> int | None:
    """What sd_journal_get_usage says of these files."""
    try:
        return sum(p.stat().st_blocks * 512 for p in files)
    except OSError:
        return None


def entries_in(files: list[Path]) -> int | None:
    """The entries the files' headers count (None: a file we cannot read as a journal)."""
    total = 0
    for path in files:
        try:
            with path.open("rb") as f:
                header = f.read(N_ENTRIES_OFFSET + N_ENTRIES.size)
        except OSError:
            return None
        if len(header) < N_ENTRIES_OFFSET + N_ENTRIES.size or not header.startswith(SIGNATURE):
            return None
        total += N_ENTRIES.unpack_from(header, N_ENTRIES_OFFSET)[0]
    return total


class MessageIndex:
    """One read's index search, in steps on the journal thread: `step()` until `finished`;
    then `entries` (read order) or None (fall back to the scan)."""

    def __init__(
        self, handle: Handle, files: list[Path], query: Query, *, bounds: Bounds = Bounds()
    ) -> None:
        assert query.search is not None
        self._handle = handle
        self._files = files
        self._query = query
        self._search: Search = query.search
        self._bounds = bounds
        self._work: Iterator[None] | None = None
        self.finished = False
        self.entries: list[Entry] | None = None
        self.reason = ""  # why it fell back, for tests and metrics
        self._seqnum_id = ""
        self._sent = 0

    def step(self) -> None:
        if self._work is None:
            self._work = self._run()
        if next(self._work, StopIteration) is StopIteration:
            self.finished = True

    def fall_back(self, reason: str) -> None:
        """Leave the read to the scan."""
        self.reason = reason
        self.entries = None
        self.finished = True

    def _run(self) -> Iterator[None]:
        threshold = self._handle.data_threshold()
        if _usage(self._files) != self._handle.usage():
            self.fall_back("files")
            return
        found: dict[str, Entry] = {}
        seqnum_ids: set[str] = set()
        values = 0
        for path in self._files:
            try:
                reader = _reader._Reader(0, files=[str(path)])
            except (OSError, ValueError):
                self.fall_back("files")
                return
            try:
                reader.data_threshold = threshold
                if reader._next():
                    seqnum_ids.add(reader._get_cursor().split(";", 1)[0])
                if len(seqnum_ids) > 1:
                    self.fall_back("seqnum-ids")
                    return
                matching: list[bytes] = []
                _fast.unique_begin(reader, "MESSAGE")
                while True:
                    text, starts, longest, ended = _fast.unique_next(reader, VALUES_PER_STEP)
                    if threshold and longest >= threshold:
                        self.fall_back("threshold")
                        return
                    hits = self._search.matching_text(text, starts, ())
                    matching += [text[starts[i] : starts[i + 1] - 1] for i in hits]
                    values += len(hits)
                    if values > self._bounds.values:
                        self.fall_back("values")
                        return
                    yield
                    if ended:
                        break
                for n, value in enumerate(matching, 1):
                    self._lookup(reader, value, found)
                    if len(found) > self._bounds.entries:
                        self.fall_back("entries")
                        return
                    if n % LOOKUPS_PER_STEP == 0:
                        yield
            except OSError:  # a file libsystemd cannot read this way: the scan decides
                self.fall_back("files")
                return
            finally:
                reader.close()
        self._seqnum_id = next(iter(seqnum_ids), "s=")[2:]
        ordered = sorted(found.values(), key=lambda e: e.seqnum.seqnum)
        if self._query.reverse:
            ordered.reverse()
        self.entries = ordered

    def take(self, size: int) -> tuple[list[Entry], str]:
        """The next `size` entries found, and the cursor of the last ('' when no more)."""
        assert self.entries is not None
        batch = self.entries[self._sent : self._sent + size]
        self._sent += len(batch)
        return batch, batch[-1].cursor if self._sent < len(self.entries) else ""

    def keep_after(self, cursor: str) -> None:
        """Keep the entries after `cursor` in read order (the scan went up to it)."""
        if self.entries is None:
            return
        end = seqnum_of(cursor)
        if self.entries and end.seqnum_id != self._seqnum_id:
            self.fall_back("seqnum-ids")
            return
        if self._query.reverse:
            self.entries = [e for e in self.entries if e.seqnum.seqnum < end.seqnum]
        else:
            self.entries = [e for e in self.entries if e.seqnum.seqnum > end.seqnum]

    def _lookup(self, reader: _reader._Reader, value: bytes, found: dict[str, Entry]) -> None:
        """The entries of this file with `value` as their first MESSAGE, within the filters."""
        reader.flush_matches()
        add_matches(reader, self._query, extra=b"MESSAGE=" + value)
        reader.seek_head()
        while reader._next():
            cursor: str = reader._get_cursor()
            if cursor in found:
                continue
            # Another MESSAGE of the entry may come first: the scan matches that one.
            if self._search.matches(reader._get("MESSAGE")):
                found[cursor] = Entry(reader._get_all(), cursor)
