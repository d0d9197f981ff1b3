"""One agent's follow for a merged stream, against a scripted node reader: reconnects from
its own last entry, reports outages once, re-reads on new containers, and falls back from
a refused cursor to its time without repeating anything."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from urllib.parse import parse_qs, quote

import pytest

from app.merge.cursor import AgentState, Debt, digests
from app.merge.entry import MergedEntry
from app.merge.fanin import Requester, SourceOpener, SourceSpec, Start
from app.merge.feed import AgentFeed, Backoff, CatchUp, owed
from app.proxy.errors import UpstreamBroken
from tests.merge.fakes import BROKEN, FakeUpstream, cursor, entry_json, response, sse_event
from tests.support.wait import wait_for_async

FAST = Backoff(first=0.001, longest=0.005)
SPEC = SourceSpec("S0", "http://127.0.0.81:1", ("c-1",))


async def token(audience: str) -> str:
    return "service-token"


class Sink:
    def __init__(self) -> None:
        self.entries: list[MergedEntry] = []
        self.events: list[str] = []
        self.owed: list[Debt] = []
        self.settled: list[Debt] = []

    def owe(self, agent: str, debt: Debt) -> None:
        self.owed.append(debt)

    def settle(self, agent: str, debt: Debt) -> None:
        self.settled.append(debt)

    async def deliver(self, agent: str, entries: list[MergedEntry]) -> None:
        self.entries += entries

    def unavailable(self, agent: str, why: str) -> None:
        self.events.append(f"down {agent}: {why}")

    def available(self, agent: str) -> None:
        self.events.append(f"up {agent}")


async def until(what: str, check: Callable[[], bool], timeout: float = 10.0) -> None:
    await wait_for_async(what, lambda: check() or None, timeout=timeout, step=0.001)


def query(upstream: FakeUpstream, index: int) -> dict[str, list[str]]:
    return parse_qs(upstream.calls[index][1].query.decode())


async def run(feed: AgentFeed, until_check: Callable[[], bool], what: str) -> None:
    task = asyncio.create_task(feed.run())
    try:
        await until(what, until_check)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def opener(upstream: FakeUpstream, **filters: str) -> SourceOpener:
    requester = Requester("alice", "10.0.0.9", "http", token, filters=tuple(filters.items()))
    return SourceOpener(upstream, requester)


async def test_reconnects_from_its_last_entry_and_reports_the_outage_once() -> None:
    upstream = FakeUpstream()
    upstream.replies["S0"] = [
        response(200, [sse_event("S0", 1, 10), sse_event("S0", 2, 20)[:30], BROKEN]),
        UpstreamBroken("the node's log reader broke the connection", node="S0"),
        response(503, [b"busy"], media_type="text/plain"),
        response(200, [sse_event("S0", 2, 20), b": ping\n\n", sse_event("S0", 3, 30)], hold=True),
    ]
    sink = Sink()
    feed = AgentFeed(SPEC, Start(since=5), opener(upstream, STREAM="STDOUT"), sink, FAST)
    await run(feed, lambda: len(sink.entries) == 3, "three entries")
    assert [e.cursor for e in sink.entries] == [cursor(1, 10), cursor(2, 20), cursor(3, 30)]
    first = query(upstream, 0)
    assert first == {
        "filter": ["CONTAINER_ID:c-1", "STREAM:STDOUT"],
        "since": ["5"],
    }
    assert upstream.calls[0][0] == SPEC.reader_url
    call = upstream.calls[0][1]
    assert call.path == "/v1/stream/"
    assert call.follow
    assert call.uid == "alice"
    assert call.header(b"accept") == "text/event-stream"
    for index in (1, 2, 3):  # every retry resumes after entry 1, the last one whole
        assert query(upstream, index)["cursor"] == [cursor(1, 10)]
        assert "since" not in query(upstream, index)
    assert sink.events == [
        "down S0: the node's log reader broke the connection",
        "up S0",
    ]
    assert feed.cursor == cursor(3, 30)


async def test_a_refused_cursor_is_read_from_its_time_without_repeats() -> None:
    upstream = FakeUpstream()
    upstream.replies["S0"] = [
        response(400, [b"Cursor not found"], media_type="text/plain"),
        # From the cursor's time: the cursor's own entry and one before it come again.
        response(
            200,
            [sse_event("S0", 6, 50), sse_event("S0", 7, 50), sse_event("S0", 8, 51)],
            hold=True,
        ),
    ]
    sink = Sink()
    feed = AgentFeed(SPEC, Start(cursor=cursor(7, 50)), opener(upstream), sink, FAST)
    await run(feed, lambda: len(sink.entries) >= 1, "an entry")
    assert [e.cursor for e in sink.entries] == [cursor(8, 51)]
    assert query(upstream, 0)["cursor"] == [cursor(7, 50)]
    assert query(upstream, 1)["since"] == [str(50)]
    assert "cursor" not in query(upstream, 1)
    assert sink.events == []


async def test_retarget_rereads_and_catches_up_the_new_containers() -> None:
    upstream = FakeUpstream()
    upstream.replies["S0"] = [
        response(200, [sse_event("S0", 1, 10)], hold=True),
        response(200, [sse_event("S0", 3, 30)], hold=True),
    ]
    # c-2 wrote entry 0 before the feed's place (entry 1) and entry 2 after it.
    before = entry_json("S0", 0, 5, "c-2 early", CONTAINER_ID="c-2")
    later = entry_json("S0", 2, 20, "c-2 later", CONTAINER_ID="c-2")
    upstream.replies["S0 range"] = [
        response(200, [before + b"\n" + later + b"\n"], media_type="application/json")
    ]
    sink = Sink()
    origin = Start(since=3)
    feed = AgentFeed(SPEC, Start(), opener(upstream), sink, FAST, origin=origin)
    task = asyncio.create_task(feed.run())
    try:
        await until("the first entry", lambda: len(sink.entries) == 1)
        feed.retarget(SourceSpec("S0", SPEC.reader_url, ("c-1", "c-2")))
        await until("the re-read and the catch-up", lambda: len(sink.entries) == 3)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert sink.events == []  # a retarget is no outage
    by_cursor = {e.cursor: e for e in sink.entries}
    assert set(by_cursor) == {cursor(1, 10), cursor(0, 5), cursor(3, 30)}
    assert by_cursor[cursor(0, 5)].catchup  # behind the agent's place: moves no position
    assert not by_cursor[cursor(3, 30)].catchup
    # The debt was recorded at once, and the catch-up's last entry settles it.
    assert [(d.start, d.end, d.members) for d in sink.owed] == [
        (None, cursor(1, 10), digests(["c-2"]))
    ]
    assert by_cursor[cursor(0, 5)].debt == sink.owed[0]
    assert by_cursor[cursor(0, 5)].settles
    assert sink.settled == []  # settled by the entry, in delivery order
    cover_1 = by_cursor[cursor(1, 10)].cover
    cover_2 = by_cursor[cursor(3, 30)].cover
    assert cover_1 is not None
    assert cover_1.members == digests(["c-1"])
    assert cover_2 is not None
    assert cover_2.members == digests(["c-1", "c-2"])
    assert feed.cursor == cursor(3, 30)
    state = feed.state()
    assert state == AgentState(cursor(3, 30), digests(["c-1", "c-2"]), ())
    calls = {(c.path, c.query.decode()) for _, c in upstream.calls}
    assert ("/v1/stream/", "filter=CONTAINER_ID%3Ac-1") in calls  # from the head
    both = "filter=CONTAINER_ID%3Ac-1&filter=CONTAINER_ID%3Ac-2"
    assert ("/v1/stream/", f"{both}&cursor={quote(cursor(1, 10), safe='')}") in calls
    assert ("/v1/range/", "filter=CONTAINER_ID%3Ac-2&since=3") in calls
    assert len(calls) == 3


def _range(*entries: bytes, cut: bool = False) -> object:
    body = b"".join(e + b"\n" for e in entries)
    return response(200, [body, BROKEN] if cut else [body], media_type="application/json")


def _early(seq: int, ts: int) -> bytes:
    return entry_json("S0", seq, ts, f"c-2 {seq}", CONTAINER_ID="c-2")


async def test_a_catch_up_that_breaks_goes_on_from_its_progress_without_repeats() -> None:
    upstream = FakeUpstream()
    upstream.replies["S0"] = [response(200, [sse_event("S0", 10, 100)], hold=True)]
    upstream.replies["S0 range"] = [
        _range(_early(1, 1), _early(2, 2), _early(3, 3), cut=True),
        _range(_early(3, 3), _early(4, 4), _early(11, 110)),
    ]
    sink = Sink()
    two = SourceSpec("S0", SPEC.reader_url, ("c-1", "c-2"))
    state = AgentState(cursor(10, 100), digests(["c-1"]))
    jobs = owed(state, two)
    feed = AgentFeed(two, Start(cursor=state.cursor), opener(upstream), sink, FAST, owed=jobs)
    await run(feed, lambda: any(e.settles for e in sink.entries), "the settling entry")
    early = [e for e in sink.entries if e.debt is not None]
    assert [e.cursor for e in early] == [cursor(n, n) for n in (1, 2, 3, 4)]
    assert [e.settles for e in early] == [False, False, False, True]
    ranges = [parse_qs(c.query.decode()) for _, c in upstream.calls if c.path == "/v1/range/"]
    assert "cursor" not in ranges[0]  # from the origin (the head: no `since`)
    assert ranges[1]["cursor"] == [cursor(2, 2)]  # after the last entry handed over
    assert ranges[1]["filter"] == ["CONTAINER_ID:c-2"]
    assert sink.owed == [jobs[0].debt]


async def test_a_catch_up_with_nothing_to_read_settles_at_once() -> None:
    upstream = FakeUpstream()
    upstream.replies["S0"] = [response(200, [], hold=True)]
    upstream.replies["S0 range"] = [response(204, [], media_type="application/json")]
    sink = Sink()
    debt = Debt(cursor(3, 30), cursor(9, 90), digests(["c-1"]))
    job = CatchUp(debt, ("c-1",))
    feed = AgentFeed(SPEC, Start(cursor=cursor(9, 90)), opener(upstream), sink, FAST, owed=(job,))
    await run(feed, lambda: sink.settled == [debt], "the settlement")
    assert sink.entries == []
    assert feed.state() == AgentState(cursor(9, 90), digests(["c-1"]), ())


async def test_an_unpaid_debt_stays_in_the_feeds_state_with_its_progress() -> None:
    upstream = FakeUpstream()
    upstream.replies["S0"] = [response(200, [], hold=True)]
    upstream.replies["S0 range"] = [_range(_early(1, 1), _early(2, 2), cut=True)] + [
        UpstreamBroken("down", node="S0") for _ in range(10)
    ]
    sink = Sink()
    debt = Debt(None, cursor(9, 90), digests(["c-2"]))
    two = SourceSpec("S0", SPEC.reader_url, ("c-1", "c-2"))
    feed = AgentFeed(
        two,
        Start(cursor=cursor(9, 90)),
        opener(upstream),
        sink,
        FAST,
        owed=(CatchUp(debt, ("c-2",)),),
    )
    await run(feed, lambda: len(upstream.calls) >= 4, "the retries")
    state = feed.state()
    assert state is not None
    assert [(d.start, d.end, d.id) for d in state.debts] == [(cursor(1, 1), debt.end, debt.id)]
