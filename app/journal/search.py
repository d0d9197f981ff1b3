"""Server-side search (issue 14): `grep=` over MESSAGE with RE2, and `context=` around matches.

RE2 (`google-re2`) matches in time linear in the input whatever the pattern: a caller's
`(a+)+$` costs what a literal costs, where a backtracking engine would take years. Patterns
are matched on the MESSAGE bytes as journald holds them (UTF-8 semantics; a message that is
not UTF-8 is still searched, its invalid bytes matching no character class).

`grep` is repeatable: an entry matches when any pattern matches (`grep -e A -e B`). An entry
with several MESSAGE fields is matched on the first (what libsystemd's get-data gives).

A range read of the whole journal (no context) does not step through every entry: it matches
the distinct MESSAGE values journald keeps once per file and looks up the entries of those that
match (app/journal/index.py); everything else scans entry by entry.

Context follows grep: each match comes with up to N entries of the *same source* (a task's
stream, else the unit) before and after it, each entry sent once; what a search with the
same parameters would already have sent before the read's start position is not sent again
(so a resumed follow continues exactly). After the `limit`-th match the read continues only
to complete the open after-contexts.

Groups (grep's `--`, `gap` in JSON/SSE) exist only with context, as in grep: an entry starts
a new group when something was sent before it and the entry just before it in its source was
not sent. A read's start rebuilds that state from the entries just before it ("prime"): read
back until every source seen there has its last 2N+1 entries (at most `MAX_PRIME`), which is
all the state a source carries. A follow resumed from its `Last-Event-ID` has sent something
(that event), so its marks are exactly those of the uninterrupted follow; the one limit is a
source silent for more than `MAX_PRIME` entries of the read before the resume point, whose
state is then taken as fresh (no after-context owed, its next line not marked).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

import re2  # type: ignore[import-untyped]

from app.core.errors import BadRequest
from app.journal.entry import Entry

MAX_PATTERNS = 16
MAX_PATTERN_BYTES = 1024
MAX_CONTEXT = 100
# RE2's memory budget for one compiled program: a pattern whose automaton would need more
# (`x{1000}{1000}`) is refused at compile time, a 400, instead of costing memory.
PROGRAM_MEMORY = 8 << 20
# Sources remembered for context (whole-node reads interleave many units); the least
# recently seen is forgotten first, losing only its before-context.
MAX_SOURCES = 4096
# After the last counted match, how many more entries a read scans to complete the
# after-contexts of its matches before it stops anyway.
AFTER_CONTEXT_SCAN = 10_000
# Entries read before a read's start position to rebuild the context state ("prime"),
# per context entry: exact for a single source (2N+1 suffice), generous for interleaved ones.
PRIME_PER_CONTEXT = 32
MAX_PRIME = 20_000


_UNANCHORED = re2._re2.RE2.Anchor.UNANCHORED
# What the batch search cannot see through: \A and \z (start and end of the whole text), and
# a flag group turning multi-line mode off. Patterns with them are matched one message at a
# time (the same results, only slower).
_NOT_BATCHABLE = re.compile(rb"\\[Az]|\(\?[a-zA-Z]*-[a-zA-Z]*m")


@dataclass(frozen=True, slots=True)
class Search:
    """What a read searches for: one compiled program for all patterns.

    `matching()` searches many messages with one call: a call into RE2 costs microseconds
    of binding overhead, which per message would cost more than reading the journal. The
    messages are joined with newlines and searched in multi-line mode (`^`/`$` at each
    message's ends, `\b` the same at a newline as at the text's ends), so every message that
    matches on its own yields a match starting at or before it; each candidate is then
    checked on its own message and the search resumes at the next message. So nothing is
    missed and nothing matches that would not match alone.
    """

    patterns: tuple[str, ...]
    context: int = 0
    _program: Any = field(default=None, repr=False, compare=False)
    _batch: Any = field(default=None, repr=False, compare=False)

    def matches(self, message: bytes | None) -> bool:
        if message is None:
            return False
        start: int = self._program.Match(_UNANCHORED, message, 0, len(message))[0][0]
        return start >= 0

    def matching(self, messages: Sequence[bytes | None]) -> list[int]:
        """The indices of the messages that match."""
        text = b"\n".join([m or b"" for m in messages])
        starts = [0, *accumulate(len(m or b"") + 1 for m in messages)]
        return self.matching_text(text, starts, [i for i, m in enumerate(messages) if m is None])

    def matching_text(self, text: bytes, starts: list[int], missing: Sequence[int]) -> list[int]:
        """As `matching`, over messages already joined with newlines: message i is
        `text[starts[i]:starts[i + 1] - 1]`; those in `missing` are None (never match)."""
        count = len(starts) - 1
        absent = set(missing)

        def matches(i: int) -> bool:
            return i not in absent and self.matches(text[starts[i] : starts[i + 1] - 1])

        if self._batch is None or count < 2:
            return [i for i in range(count) if matches(i)]
        out: list[int] = []
        pos, end, last = 0, len(text), count - 1
        match = self._batch.Match
        while True:
            found: int = match(_UNANCHORED, text, pos, end)[0][0]
            if found < 0:
                return out
            i = bisect_right(starts, found) - 1
            if matches(i):
                out.append(i)
            if i >= last:
                return out
            pos = starts[i + 1]

    @property
    def prime_size(self) -> int:
        return min(MAX_PRIME, (2 * self.context + 1) * PRIME_PER_CONTEXT) if self.context else 0


def _options() -> Any:
    options = re2.Options()
    options.max_mem = PROGRAM_MEMORY
    options.log_errors = False
    return options


def compile_search(patterns: Sequence[str], *, context: int = 0) -> Search | None:
    """The patterns as one RE2 program, or None when there are none; 400 names `grep`."""
    if not 0 <= context <= MAX_CONTEXT:
        raise BadRequest(f"`context` is at most {MAX_CONTEXT}", parameter="context")
    if not patterns:
        # Context around no match is nothing: ignored, as a client's shared `context` setting
        # must not turn a read without `grep` into a 400 (schemathesis' positive data found it).
        return None
    if len(patterns) > MAX_PATTERNS:
        raise BadRequest(f"at most {MAX_PATTERNS} `grep` patterns", parameter="grep")
    parts = []
    options = _options()
    options.never_capture = True
    for pattern in patterns:
        raw = pattern.encode()
        if not raw:
            raise BadRequest("empty `grep` pattern", parameter="grep")
        if len(raw) > MAX_PATTERN_BYTES:
            raise BadRequest(
                f"`grep` pattern longer than {MAX_PATTERN_BYTES} bytes", parameter="grep"
            )
        try:
            re2.compile(raw, options)
        except re2.error as exc:
            raise BadRequest(
                f"invalid `grep` pattern {pattern!r} (RE2 syntax): {exc}", parameter="grep"
            ) from None
        parts.append(b"(?:" + raw + b")")
    combined = b"|".join(parts)
    try:
        program = re2.compile(combined, options)
        batch = None
        if not _NOT_BATCHABLE.search(combined):
            batch = re2.compile(b"(?m:" + combined + b")", options)
    except re2.error as exc:  # each is fine alone, together too large
        raise BadRequest(f"`grep` patterns too large together: {exc}", parameter="grep") from None
    return Search(tuple(patterns), context, program._regexp, batch and batch._regexp)


def parse_search(grep: Sequence[str], context: str | None) -> Search | None:
    """`grep=` (repeatable) and `context=` query values → a Search; 400s name the parameter."""
    n = 0
    if context:
        if not (context.isascii() and context.isdigit()):
            raise BadRequest(
                f"`context` must be a number of entries, not {context!r}", parameter="context"
            )
        # A huge digit string is simply too large (and int() of it would be slow).
        n = int(context) if len(context) <= len(str(MAX_CONTEXT)) else MAX_CONTEXT + 1
    return compile_search([g for g in grep if g], context=n)


def source_of(entry: Entry) -> tuple[bytes | None, ...]:
    """Where an entry comes from, for context: a task's stream, else its unit, else its
    syslog identifier."""
    container = entry.field_bytes("CONTAINER_ID")
    if container is not None:
        return (container, entry.field_bytes("STREAM"))
    unit = entry.field_bytes("_SYSTEMD_UNIT") or entry.field_bytes("UNIT")
    if unit is not None:
        return (b"", unit)
    return (b"", b"", entry.field_bytes("SYSLOG_IDENTIFIER"))


class Hit(Entry):
    """An entry as a search delivers it: a match or context, and whether it starts a new
    group (grep's `--`: not adjacent, in its source, to what was sent before it)."""

    __slots__ = ("gap", "is_match", "late")

    def __init__(self, entry: Entry, *, is_match: bool, gap: bool, late: bool = False) -> None:
        super().__init__(entry.raw, entry.cursor)
        self._json_unescaped = entry._json_unescaped
        self.is_match = is_match
        self.gap = gap
        # Before-context, sent when its match is found: after entries of other sources
        # that may be newer than it (so no SSE `id`: it is not a resume point).
        self.late = late


class _Source:
    __slots__ = ("after", "before", "last_out", "seen")

    def __init__(self, context: int) -> None:
        self.seen = 0  # entries of this source fed so far
        self.last_out = -1  # index of the last one sent (or that would have been)
        self.after = 0  # after-context still owed
        self.before: deque[tuple[int, Entry]] = deque(maxlen=context or 1)


class Selector:
    """Per read, stateful: entries in read order → the hits to send.

    `limit`: matches to count (None: all). `prime()` feeds entries from before the start
    position: they move the state but are never sent.
    """

    def __init__(self, search: Search, *, limit: int | None = None) -> None:
        self.search = search
        self.matched = 0
        self._limit = limit
        self._sources: OrderedDict[tuple[bytes | None, ...], _Source] = OrderedDict()
        self._sent_any = False
        self._groups = search.context > 0  # grep's `--`: only between groups of context
        self._after_owed = 0  # sources with after-context still owed
        self._scanned_after_limit = 0

    @property
    def counting(self) -> bool:
        return self._limit is None or self.matched < self._limit

    @property
    def done(self) -> bool:
        """The limit is reached and no after-context is owed (or scanning for it gave up)."""
        return not self.counting and (
            self._after_owed == 0 or self._scanned_after_limit >= AFTER_CONTEXT_SCAN
        )

    def _source(self, entry: Entry) -> _Source:
        key = source_of(entry)
        src = self._sources.get(key)
        if src is None:
            src = self._sources[key] = _Source(self.search.context)
            if len(self._sources) > MAX_SOURCES:
                _, old = self._sources.popitem(last=False)
                if old.after:
                    self._after_owed -= 1
        else:
            self._sources.move_to_end(key)
        return src

    def prime(self, entries: Sequence[Entry], *, resumed: bool = False) -> None:
        """`resumed`: the read continues a follow whose client got at least one event."""
        for entry in entries:
            self._step(entry, None, count=False)
        if resumed:
            self._sent_any = True

    def feed(self, entries: Sequence[Entry]) -> list[Entry]:
        out: list[Entry] = []
        for entry in entries:
            if self.done:
                break
            if not self.counting:
                self._scanned_after_limit += 1
            self._step(entry, out, count=True)
        return out

    def _emit(
        self,
        src: _Source,
        index: int,
        entry: Entry,
        out: list[Entry] | None,
        hit: bool,
        late: bool = False,
    ) -> None:
        if out is not None:
            gap = self._groups and self._sent_any and src.last_out != index - 1
            out.append(Hit(entry, is_match=hit, gap=gap, late=late))
            self._sent_any = True
        src.last_out = index

    def _step(self, entry: Entry, out: list[Entry] | None, *, count: bool) -> None:
        context = self.search.context
        src = self._source(entry)
        index = src.seen
        src.seen += 1
        counting = not count or self.counting
        if counting and self.search.matches(entry.searched_message):
            if count:
                self.matched += 1
            for i, earlier in src.before:
                if i > src.last_out:
                    self._emit(src, i, earlier, out, False, late=True)
            src.before.clear()
            self._emit(src, index, entry, out, True)
            if context:
                if not src.after:
                    self._after_owed += 1
                src.after = context
            return
        if src.after:
            src.after -= 1
            if not src.after:
                self._after_owed -= 1
            self._emit(src, index, entry, out, False)
        elif context:
            src.before.append((index, entry))


def primed_enough(entries: Sequence[Entry], context: int) -> bool:
    """Do `entries` (read back from a start) hold the last 2N+1 entries of every source seen
    in them, all the state a search keeps per source?"""
    need = 2 * context + 1
    seen: dict[tuple[bytes | None, ...], int] = {}
    for entry in entries:
        key = source_of(entry)
        seen[key] = seen.get(key, 0) + 1
    return all(n >= need for n in seen.values())


def mark(data: bytes, hit: Entry) -> bytes:
    """`"match":true|false` (and `"gap":true` where a new group starts) added to the last
    JSON object in one encoded entry."""
    if not isinstance(hit, Hit):
        return data
    end = data.rindex(b"}")
    extra = b',"match":true' if hit.is_match else b',"match":false'
    if hit.gap:
        extra += b',"gap":true'
    return data[:end] + extra + data[end:]


class SearchEncoder:
    """Wraps an encoder for a search read: JSON and SSE entries carry `match` (and `gap`),
    text output has grep's `--` line between groups. Before-context events have no SSE
    `id`: the client's Last-Event-ID stays on the last entry sent in journal order, so a
    resumed follow never repeats or loses a match (context cut by the disconnection may
    come again)."""

    def __init__(self, inner: Any, *, text: bool) -> None:
        self._inner = inner
        self._text = text
        self.media_type: str = inner.media_type

    def encode(self, entries: list[Entry]) -> bytes:
        out: list[bytes] = []
        encode = self._inner.encode
        for entry in entries:
            data = encode([entry])
            if self._text:
                if isinstance(entry, Hit) and entry.gap:
                    out.append(b"--\n")
                out.append(data)
            elif data:
                if isinstance(entry, Hit) and entry.late and data.startswith(b"id: "):
                    data = data[data.index(b"\n") + 1 :]
                out.append(mark(data, entry))
        return b"".join(out)

    def heartbeat(self) -> bytes | None:
        result: bytes | None = self._inner.heartbeat()
        return result
