"""One agent's follow for a merged stream, against a scripted node reader: reconnects from
its own last entry, reports outages once, re-reads on new containers, and falls back from
a refused cursor to its time without repeating anything."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from urllib.parse import parse_qs, quote

import pytest

from app.proxy.errors import UpstreamBroken
from app.proxy.fanin import Requester, SourceOpener, SourceSpec, Start
from app.proxy.merge_entry import MergedEntry
from app.proxy.merge_feed import AgentFeed, Backoff
from tests.merge.fakes import BROKEN, FakeUpstream, cursor, entry_json, response, sse_event

FAST = Backoff(first=0.001, longest=0.005)
SPEC = SourceSpec("S0", "http://127.0.0.81:1", ("c-1",))


async def token() -> str:
    return "service-token"


class Sink:
    def __init__(self) -> None:
        self.entries: list[MergedEntry] = []
        self.events: list[str] = []

    async def deliver(self, agent: str, entries: list[MergedEntry]) -> None:
        self.entries += entries

    def unavailable(self, agent: str, why: str) -> None:
        self.events.append(f"down {agent}: {why}")

    def available(self, agent: str) -> None:
        self.events.append(f"up {agent}")


async def until(what: str, check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.001)


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
    assert feed.cursor == cursor(3, 30)
    calls = {(c.path, c.query.decode()) for _, c in upstream.calls}
    assert ("/v1/stream/", "filter=CONTAINER_ID%3Ac-1") in calls  # from the head
    both = "filter=CONTAINER_ID%3Ac-1&filter=CONTAINER_ID%3Ac-2"
    assert ("/v1/stream/", f"{both}&cursor={quote(cursor(1, 10), safe='')}") in calls
    assert ("/v1/range/", "filter=CONTAINER_ID%3Ac-2&since=3") in calls
    assert len(calls) == 3
