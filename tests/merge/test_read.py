"""Where a merged read starts, against a scripted upstream: the origin, a composite cursor's
per-agent places, and a stream's `skip_prev` tail."""

from __future__ import annotations

from types import MappingProxyType
from urllib.parse import parse_qs

from app.journal.encoders import JSON, SSE
from app.merge import MergePlan, Query, Requester, StreamOptions, read_range, read_stream
from app.merge.cursor import decode_cursor, digests, encode_cursor, pack
from app.merge.fanin import SourceSpec
from app.merge.stream import MergedStreamResponse
from app.proxy.call import UpstreamResponse
from app.proxy.metrics import ProxyMetrics
from tests.merge.fakes import FakeUpstream, cursor, entry_json, response

PLAN = MergePlan(
    MappingProxyType(
        {
            "S0": SourceSpec("S0", "http://127.0.0.160:1", ("c-0",)),
            "S1": SourceSpec("S1", "http://127.0.0.160:2", ("c-1",)),
        }
    )
)


async def token() -> str:
    return "service-token"


REQUESTER = Requester("alice", "10.0.0.9", "http", token)
Replies = list[UpstreamResponse | Exception]


class SamePlan:
    async def plan(self) -> MergePlan:
        return PLAN


def queries(upstream: FakeUpstream) -> dict[str, dict[str, list[str]]]:
    return {call.node: parse_qs(call.query.decode()) for _, call in upstream.calls}


def empty() -> Replies:
    return [response(204, [], JSON)]


async def test_a_range_starts_every_agent_at_since() -> None:
    upstream = FakeUpstream({"S0": empty(), "S1": empty()})
    query = Query(media=JSON, since=1_000)
    answer = await read_range(PLAN, upstream, REQUESTER, query, metrics=ProxyMetrics())
    assert answer.status_code == 204
    for agent, asked in queries(upstream).items():
        assert asked["since"] == ["1000"], agent
        assert "cursor" not in asked


async def test_a_range_resumes_each_agent_from_its_place_in_the_cursor() -> None:
    place = cursor(7, 5_000)
    raw = encode_cursor(900, {"S0": place}, {"S0": pack(digests(["c-0"]))})
    upstream = FakeUpstream({"S0": empty(), "S1": empty()})
    query = Query(media=JSON, since=1, cursor=decode_cursor(raw))
    await read_range(PLAN, upstream, REQUESTER, query, metrics=ProxyMetrics())
    asked = queries(upstream)
    assert asked["S0"]["cursor"] == [place]
    assert "since" not in asked["S0"]
    # An agent the cursor does not name starts at the cursor's origin, not at `since`.
    assert asked["S1"]["since"] == ["900"]
    assert "cursor" not in asked["S1"]


async def test_a_stream_with_skip_prev_reads_each_agents_last_n_first() -> None:
    def lines(agent: str, *stamps: int) -> Replies:
        body = b"".join(entry_json(agent, ts, ts, f"{agent} {ts}") + b"\n" for ts in stamps)
        return [response(200, [body], JSON)]

    upstream = FakeUpstream({"S0 range": lines("S0", 1, 3), "S1 range": lines("S1", 2, 4)})
    closed: list[bool] = []
    answer = await read_stream(
        SamePlan(),
        PLAN,
        upstream,
        REQUESTER,
        Query(media=SSE, skip_prev=2),
        max_agents=10,
        options=StreamOptions(),
        metrics=ProxyMetrics(),
        on_close=lambda: closed.append(True),
    )
    assert isinstance(answer, MergedStreamResponse)
    assert dict(answer.headers)["content-type"] == SSE
    assert {node: asked["skip_prev"] for node, asked in queries(upstream).items()} == {
        "S0": ["2"],
        "S1": ["2"],
    }
    assert [e.ts for e in answer._prelude] == [3, 4]  # the last 2 of the merged whole
    assert not closed  # released when the stream ends, not before it starts
