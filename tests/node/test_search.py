"""grep=/context=/count over a real journald namespace, checked against a brute-force search
of the same journal as `journalctl --namespace … -o json` prints it (issue 14)."""

from __future__ import annotations

import itertools
import re
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
import orjson
import pytest

from app.devcluster.journald import JournaldNamespace
from app.shipper.native import JournalWriter
from tests.support.journal import Sender, sending_namespace
from tests.support.servers import node_reader

HOST = "127.0.0.120"
TASK = "framework/fw-1/executor/ex-1/container/ct-1"
MESSAGES: list[str | bytes] = [
    "error: disk full",
    "Error: timeout talking to db",
    "info: all good",
    "naïve café 日本語",
    b"caf\xe9 bad byte error",
    "warn: slow ERROR-ish",
    "",
    "debug aaaaaaaaaaaaaaaaaaaa",
]
PATTERNS = {
    "plain": "error",
    "anchored": "^Error",
    "case-insensitive": "(?i)error",
    "unicode": "日本|naïve",
    "non-utf8": "bad byte",
    "none": "zzz-not-there",
    "all": ".*",
}


@dataclass(frozen=True)
class Row:
    cursor: str
    message: bytes | None
    source: tuple[str, ...]


def _fields(i: int) -> dict[str, str | bytes]:
    msg = MESSAGES[(i * 7 + i // 5) % len(MESSAGES)]
    fields: dict[str, str | bytes] = {"SEQ": str(i)}
    if i % 11 != 10:  # some entries have no MESSAGE at all
        fields["MESSAGE"] = msg
    kind = i % 4
    if kind < 2:
        fields.update(
            FRAMEWORK_ID="fw-1",
            EXECUTOR_ID="ex-1",
            CONTAINER_ID="ct-1",
            STREAM="STDOUT" if kind == 0 else "STDERR",
        )
    else:
        fields["UNIT"] = "a.service" if kind == 2 else "b.service"
    return fields


@pytest.fixture(scope="module")
def namespace() -> Iterator[JournaldNamespace]:
    with sending_namespace() as (ns, sender):
        for i in range(90):
            sender.send(_fields(i))
        ns.sync()
        yield ns


@pytest.fixture(scope="module")
def base(namespace: JournaldNamespace) -> Iterator[str]:
    with node_reader(namespace.name, "--no-auth", host=HOST) as url:
        yield url


_ROWS: dict[tuple[str, ...], list[Row]] = {}


def rows_of(ns: JournaldNamespace, *matches: str) -> list[Row]:
    """`journal_rows` of the module's namespace, read once (it does not change)."""
    key = (ns.name, *matches)
    if key not in _ROWS:
        _ROWS[key] = journal_rows(ns, *matches)
    return _ROWS[key]


def journal_rows(ns: JournaldNamespace, *matches: str) -> list[Row]:
    """The journal as journalctl prints it (non-UTF-8 values as lists of bytes)."""
    out = subprocess.run(
        ["journalctl", f"--namespace={ns.name}", "-o", "json", "--no-pager", *matches],
        check=True,
        capture_output=True,
    ).stdout
    rows = []
    for line in out.splitlines():
        doc = orjson.loads(line)
        raw = doc.get("MESSAGE")
        message = bytes(raw) if isinstance(raw, list) else None if raw is None else raw.encode()
        if "CONTAINER_ID" in doc:
            source: tuple[str, ...] = (doc["CONTAINER_ID"], doc["STREAM"])
        elif "_SYSTEMD_UNIT" in doc or "UNIT" in doc:
            source = ("", doc.get("_SYSTEMD_UNIT") or doc["UNIT"])
        else:  # journald's own lines
            source = ("", "", doc.get("SYSLOG_IDENTIFIER", ""))
        rows.append(Row(doc["__CURSOR"], message, source))
    return rows


def brute_force(
    rows: list[Row], pattern: str, *, context: int = 0, start: int = 0, limit: int | None = None
) -> list[tuple[str, bool]]:
    """grep over `rows` (read order): the matches from `start` (at most `limit`), each with
    `context` entries of its source either side; entries before `start` that the same
    search would have sent already are not sent; after the last counted match, only
    after-context."""
    rx = re.compile(pattern.encode())
    matches = [i for i, r in enumerate(rows) if r.message is not None and rx.search(r.message)]
    selected = [i for i in matches if i >= start][:limit]
    by_source: dict[tuple[str, ...], list[int]] = defaultdict(list)
    where: dict[int, int] = {}
    for i, r in enumerate(rows):
        where[i] = len(by_source[r.source])
        by_source[r.source].append(i)

    def window(i: int, before: bool = True) -> set[int]:
        lst, p = by_source[rows[i].source], where[i]
        return set(lst[max(0, p - context) if before else p : p + context + 1])

    out: set[int] = set()
    already: set[int] = set()
    for i in matches:
        if i < start:
            already |= window(i)
            out |= {j for j in window(i, before=False) if j >= start}
    for i in selected:
        out |= {j for j in window(i) if j >= start or j not in already}
    if limit is not None and len(selected) == limit:
        last = selected[-1]
        keep = set()
        for i in matches:
            if i <= last:
                keep |= window(i, before=False)
        out = {j for j in out if j <= last or j in keep}
    chosen = set(selected)
    after_of_match = set()
    for i in matches:
        after_of_match |= window(i, before=False)

    def sent_at(j: int) -> tuple[int, int, int]:
        if j in after_of_match:  # a match, or after-context: sent as it is read
            return (j, 1, j)
        # before-context: sent just before the match that needs it
        trigger = min(i for i in matches if i > j and j in window(i))
        return (trigger, 0, j)

    return [(rows[j].cursor, j in chosen) for j in sorted(out, key=sent_at)]


def got(response: httpx.Response) -> list[tuple[str, bool]]:
    assert response.status_code in (200, 204), response.text
    docs = [orjson.loads(line) for line in response.content.splitlines()]
    return [(d["cursor"], d["match"]) for d in docs]


def read(base: str, path: str, **params: object) -> httpx.Response:
    query = urlencode([(k, v) for k, v in params.items()], doseq=True)
    return httpx.get(f"{base}{path}?{query}", headers={"accept": "application/json"}, timeout=10)


@pytest.mark.parametrize("name", sorted(PATTERNS))
@pytest.mark.parametrize("context", [0, 2])
def test_range_equals_brute_force(
    base: str, namespace: JournaldNamespace, name: str, context: int
) -> None:
    rows = rows_of(namespace)
    pattern = PATTERNS[name]
    expected = brute_force(rows, pattern, context=context)
    params: dict[str, object] = {"grep": pattern}
    if context:
        params["context"] = context
    assert got(read(base, "/v1/range/", **params)) == expected
    count = read(base, "/v1/count/", grep=pattern).json()
    assert count == {"entries": sum(1 for _, m in expected if m)}
    # reversed: the same entries, newest first (context is symmetric)
    reverse = got(read(base, "/v1/range/", read_reverse="true", **params))
    assert reverse == brute_force(rows[::-1], pattern, context=context)


def _index_searches(base: str) -> dict[str, int]:
    text = httpx.get(f"{base}/metrics", timeout=5).text
    return {
        m[1]: int(m[2]) for m in re.finditer(r'index_searches_total\{path="(.*)"\} (\d+)', text)
    }


def test_a_whole_range_search_goes_through_the_index(
    base: str, namespace: JournaldNamespace
) -> None:
    """The v1 task route and a v2 unit lookup: the journal's index, the brute force's result."""
    before = _index_searches(base).get("index", 0)
    rows = rows_of(namespace, "CONTAINER_ID=ct-1")
    # (no limit: the first 5 % of the journal the read scans first must not finish it)
    r = read(base, f"/v1/range/{TASK}", grep="(?i)error", read_reverse="true")
    assert got(r) == brute_force(rows[::-1], "(?i)error")
    unit = rows_of(namespace, "UNIT=a.service")
    r = read(base, "/v2/component/a.service", grep="error")
    assert got(r) == brute_force(unit, "error")
    assert read(base, f"/v1/count/{TASK}", grep="error").json() == {
        "entries": len(brute_force(rows, "error"))
    }
    assert _index_searches(base)["index"] == before + 3


@pytest.mark.parametrize("context", [0, 1, 3])
def test_task_route_skip_prev_limit_and_cursor_count_matches(
    base: str, namespace: JournaldNamespace, context: int
) -> None:
    rows = rows_of(namespace, "CONTAINER_ID=ct-1")
    pattern = "(?i)error"
    rx = re.compile(pattern.encode())
    matches = [i for i, r in enumerate(rows) if r.message and rx.search(r.message)]
    path = f"/v1/range/{TASK}"
    # the last 4 matches, however far back
    r = read(base, path, grep=pattern, skip_prev=4, context=context)
    assert got(r) == brute_force(rows, pattern, context=context, start=matches[-4])
    assert r.headers["x-journal-skip-prev"] == "4"
    # the first 3 matches after a cursor
    start = 5
    r = read(base, path, grep=pattern, cursor=rows[start - 1].cursor, limit=3, context=context)
    assert got(r) == brute_force(rows, pattern, context=context, start=start, limit=3)
    # skip_next skips matches
    r = read(base, path, grep=pattern, skip_next=2, limit=2, context=context)
    assert got(r) == brute_force(rows, pattern, context=context, start=matches[1] + 1, limit=2)
    # reversed and skipping the last 2 matches
    back = rows[::-1]
    rmatches = [i for i, row in enumerate(back) if row.message and rx.search(row.message)]
    r = read(base, path, grep=pattern, read_reverse="true", skip_prev=2, context=context)
    assert got(r) == brute_force(back, pattern, context=context, start=rmatches[1] + 1)
    count = read(base, f"/v1/count/{TASK}", grep=pattern, skip_prev=4).json()
    assert count == {"entries": 4}


def test_time_window_and_no_grep_count(base: str, namespace: JournaldNamespace) -> None:
    rows = rows_of(namespace)
    assert read(base, "/v1/count/").json() == {"entries": len(rows)}
    assert read(base, "/v1/count/", filter="UNIT:a.service", limit=3).json() == {"entries": 3}
    future = int(time.time() * 1e6) + 3_600_000_000
    assert read(base, "/v1/count/", grep="error", since=future).json() == {"entries": 0}
    assert read(base, "/v1/range/", grep="error", since=future).status_code == 204


def test_text_output_separates_groups(base: str, namespace: JournaldNamespace) -> None:
    rows = rows_of(namespace, "UNIT=a.service")
    expected = brute_force(rows, "^Error", context=1)
    r = httpx.get(
        f"{base}/v1/range/", params={"grep": "^Error", "context": "1", "filter": "UNIT:a.service"}
    )
    lines = r.content.decode(errors="replace").splitlines()
    text = [line for line in lines if line != "--"]
    assert len(text) == sum(1 for _ in expected) - _without_message(rows, expected)
    groups = 1 + lines.count("--")
    assert groups > 1
    assert groups == _groups(rows, expected)


def _without_message(rows: list[Row], hits: list[tuple[str, bool]]) -> int:
    cursors = {r.cursor: r for r in rows}
    return sum(1 for c, _ in hits if cursors[c].message is None)


def _groups(rows: list[Row], hits: list[tuple[str, bool]]) -> int:
    index = {r.cursor: i for i, r in enumerate(rows)}
    positions = [index[c] for c, _ in hits]
    return 1 + sum(1 for a, b in itertools.pairwise(positions) if b != a + 1)


@pytest.mark.parametrize(
    ("params", "parameter"),
    [
        ({"grep": "(unclosed"}, "grep"),
        ({"grep": "x" * 2000}, "grep"),
        ({"grep": "a{1000}{1000}"}, "grep"),
        ({"grep": "a", "context": "-1"}, "context"),
        ({"grep": "a", "context": "100000000"}, "context"),
        ({"context": "101"}, "context"),
    ],
)
def test_bad_search_is_400_naming_the_parameter(
    base: str, params: dict[str, str], parameter: str
) -> None:
    for path in ("/v1/range/", "/v1/count/", "/v1/stream/", "/v2/component"):
        r = httpx.get(base + path, params=params, timeout=10)
        assert r.status_code == 400, (path, r.text)
        assert parameter in r.text


def test_context_without_grep_is_ignored(base: str) -> None:
    """Context around no match is nothing: the read is the one without it (not a 400)."""
    for path in ("/v1/range/?limit=3", "/v1/count/?limit=3", "/v2/component?limit=3"):
        plain = httpx.get(base + path, timeout=10)
        r = httpx.get(base + path + "&context=2", timeout=10)
        assert r.status_code == 200, (path, r.text)
        assert r.text == plain.text, path


def test_catastrophic_pattern_costs_what_a_literal_costs(
    journal_namespace: JournaldNamespace,
) -> None:
    writer = JournalWriter(journal_namespace.socket)  # a 1 MB entry goes through a memfd
    writer.send({"MESSAGE": b"a" * 1_000_000 + b"!", "SEQ": b"0"})
    writer.send({"MESSAGE": b"aaa", "SEQ": b"1"})
    writer.close()
    journal_namespace.sync()
    with node_reader(journal_namespace.name, "--no-auth", host=HOST) as url:

        def timed(pattern: str) -> tuple[float, int]:
            best = float("inf")
            for _ in range(3):
                t = time.perf_counter()
                r = httpx.get(f"{url}/v1/count/", params={"grep": pattern}, timeout=30)
                best = min(best, time.perf_counter() - t)
            return best, r.json()["entries"]

        literal, n_literal = timed("aaab")
        evil, n_evil = timed("(a+)+$")
        assert (n_literal, n_evil) == (0, 1)
        assert evil < max(10 * literal, 0.05), (evil, literal)


def test_follow_applies_grep_and_resumes_exactly(journal_namespace: JournaldNamespace) -> None:
    sender = Sender(journal_namespace)
    for i in range(10):
        sender.send(_fields(i))
    journal_namespace.sync()
    written_before = len(journal_rows(journal_namespace))
    with node_reader(journal_namespace.name, "--no-auth", host=HOST) as url:
        params = {"grep": "(?i)error", "context": "1", "skip_prev": "2"}
        headers = {"accept": "text/event-stream"}
        seen: list[tuple[str, bool]] = []
        with httpx.stream(
            "GET", f"{url}/v1/stream/", params=params, headers=headers, timeout=10
        ) as r:
            events = _events(r.iter_lines())
            for i in range(10, 40):
                sender.send(_fields(i))
            journal_namespace.sync()
            rows = journal_rows(journal_namespace)
            rx = re.compile(b"(?i)error")
            first = [
                i
                for i, row in enumerate(rows[:written_before])
                if row.message and rx.search(row.message)
            ]
            expected = brute_force(rows, "(?i)error", context=1, start=first[-2])
            while len(seen) < len(expected) // 2 or not seen[-1][1]:
                seen.append(next(events))
        # resume from the last event id (a match's): exactly the rest
        headers["last-event-id"] = seen[-1][0]
        with httpx.stream(
            "GET", f"{url}/v1/stream/", params=params, headers=headers, timeout=10
        ) as r:
            events = _events(r.iter_lines())
            while len(seen) < len(expected):
                seen.append(next(events))
        assert seen == expected
    sender.close()


def _events(lines: Iterator[str]) -> Iterator[tuple[str, bool]]:
    event_id = ""
    for line in lines:
        if line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("data: "):
            doc = orjson.loads(line[6:])
            assert doc["match"] or doc["cursor"] == event_id or "id" not in doc
            yield doc["cursor"], doc["match"]


def test_a_long_scan_keeps_an_sse_follow_alive(
    journal_namespace: JournaldNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Catching up over many lines that do not match sends `: ping`s before the match at
    the end of the journal arrives (the live stream's idle pings come only after it)."""
    sender = Sender(journal_namespace)
    sender.send({"MESSAGE": "first", "SEQ": "0"})
    for i in range(10_000):
        sender.send({"MESSAGE": f"filler {i}", "SEQ": str(i)})
    sender.send({"MESSAGE": "the needle", "SEQ": "x"})
    sender.close()
    journal_namespace.sync()
    first = journal_rows(journal_namespace)[0].cursor
    monkeypatch.setenv("LOGWAY_NODE_HEARTBEAT_INTERVAL", "0.002")
    with node_reader(journal_namespace.name, "--no-auth", host=HOST) as url:
        params = {"grep": "needle", "cursor": first}
        headers = {"accept": "text/event-stream"}
        with httpx.stream(
            "GET", f"{url}/v1/stream/", params=params, headers=headers, timeout=30
        ) as r:
            seen = []
            for line in r.iter_lines():
                if line.startswith((": ping", "data: ")):
                    seen.append(line[:6])
                if line.startswith("data: "):
                    break
    assert seen[-1] == "data: "
    assert ": ping" in seen[:-1]


def _marked(lines: Iterator[str]) -> Iterator[tuple[str | None, str, bool, bool]]:
    """An SSE search stream's events: (id or None, cursor, match, gap)."""
    event_id: str | None = None
    for line in lines:
        if line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("data: "):
            doc = orjson.loads(line[6:])
            yield event_id, doc["cursor"], doc["match"], doc.get("gap", False)
            event_id = None


def _follow(
    url: str, params: dict[str, str], count: int, last_event_id: str | None = None
) -> list[tuple[str | None, str, bool, bool]]:
    headers = {"accept": "text/event-stream"}
    if last_event_id is not None:
        headers["last-event-id"] = last_event_id
    with httpx.stream("GET", f"{url}/v1/stream/", params=params, headers=headers, timeout=10) as r:
        assert r.status_code == 200
        return list(itertools.islice(_marked(r.iter_lines()), count))


@pytest.mark.parametrize("context", [1, 2])
def test_a_resumed_follow_marks_gaps_as_the_uninterrupted_one(
    base: str, namespace: JournaldNamespace, context: int
) -> None:
    """Resumed from any event id, a follow sends exactly what the uninterrupted follow sent
    after that event, `gap` marks included: the first line after the resume too."""
    params = {"grep": "(?i)error", "context": str(context)}
    r = read(base, "/v1/range/", **params)
    whole = [
        (d["cursor"], d["match"], d.get("gap", False))
        for d in map(orjson.loads, r.content.splitlines())
    ]
    assert any(gap for *_, gap in whole)
    follow = _follow(base, params, len(whole))
    assert [(c, m, g) for _, c, m, g in follow] == whole  # the follow is the range, marks too
    resumed_with_gap = 0
    for k, (event_id, *_) in enumerate(follow[:-1]):
        if event_id is None:
            continue
        rest = [(c, m, g) for _, c, m, g in follow[k + 1 :]]
        again = _follow(base, params, len(rest), last_event_id=event_id)
        assert [(c, m, g) for _, c, m, g in again] == rest, k
        resumed_with_gap += rest[0][2]
    assert resumed_with_gap  # some resume starts right on a new group


def test_without_context_nothing_is_a_gap(base: str, namespace: JournaldNamespace) -> None:
    """grep's `--` separates groups of context only: a search without context marks no gap
    (whether the journal was scanned for matches or read entry by entry)."""
    r = read(base, "/v1/range/", grep="(?i)error")
    docs = [orjson.loads(line) for line in r.content.splitlines()]
    assert docs
    assert not any("gap" in d for d in docs)
    events = _follow(base, {"grep": "(?i)error"}, len(docs))
    assert not any(gap for *_, gap in events)
