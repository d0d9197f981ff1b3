"""Where a follow starts, as the gateway reads it to decide whether a late caller may join a
shared upstream (app/proxy/start.py mirrors app/journal/params.py)."""

from __future__ import annotations

import pytest

from app.proxy.call import UpstreamCall
from app.proxy.start import Start, follow_start

V1 = "/v1/stream/"
V1_TASK = "/v1/stream/framework/f/executor/e/container/c"
V2 = "/v2/task/frameworks/f/executors/e/runs/c/stdout"


def call(
    path: str, query: str, *, accept: str = "text/event-stream", **headers: str
) -> UpstreamCall:
    raw = [(b"accept", accept.encode())] + [
        (k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()
    ]
    return UpstreamCall("GET", path, query.encode(), tuple(raw), "n", None, None, "http", None)


@pytest.mark.parametrize(
    ("path", "query", "start"),
    [
        (V1, "skip_prev=1", Start(last=1)),
        (V1_TASK, "skip_prev=10&filter=STREAM:STDOUT", Start(last=10)),
        (V1, "skip_prev=3&since=2026-12-01T00:00:00Z", Start(last=3)),
        (V1, "", Start()),  # from the head
        (V1, "skip_prev=0", Start()),
        (V1, "skip_prev=2&skip_next=1", Start()),  # from the head, then skips
        (V1, "cursor=s%3Dabc&skip_prev=2", Start()),
        (V1, "skip_prev=2&until=2026-12-01T00:00:00Z", Start()),  # before a fixed time
        (V1, "skip_prev=1&skip_prev=4", Start(last=4)),  # the last value, as the node reads
        (V2, "cursor=END", Start(last=1)),
        (V2, "cursor=END&skip=-5", Start(last=5)),
        (V2, "skip=-5", Start(last=5)),
        (V2, "cursor=BEG", Start()),
        (V2, "", Start()),
        (V2, "skip=3", Start()),
    ],
)
def test_starts(path: str, query: str, start: Start) -> None:
    assert follow_start(call(path, query)) == start


def test_a_last_event_id_wins_over_the_query() -> None:
    assert follow_start(call(V1, "skip_prev=4", last_event_id="s=1")) == Start(after="s=1")
    assert follow_start(call(V1, "skip_prev=4", last_event_id="")) == Start(last=4)


@pytest.mark.parametrize(
    ("path", "query", "accept"),
    [
        (V2, "limit=5&cursor=END", "text/event-stream"),  # ends after a count
        (V1, "skip_prev=1&grep=x&context=2", "text/event-stream"),  # context around matches
        (V1, "skip_prev=1", "application/json"),  # no event ids to join at
        (V1, "skip_prev=x", "text/event-stream"),  # the node answers 400, to each alone
        (V2, "skip=--1", "text/event-stream"),
    ],
)
def test_not_shared(path: str, query: str, accept: str) -> None:
    assert follow_start(call(path, query, accept=accept)) is None
