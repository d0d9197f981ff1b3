"""The call value, follow detection and the resume backoff."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from app.proxy import ResumePolicy, UpstreamCall, is_follow


@pytest.mark.parametrize(
    ("path", "accept", "follow"),
    [
        ("/v1/stream/", None, True),
        ("/v1/stream", "text/plain", True),
        ("/v1/stream/framework/f/executor/e/container/c", "text/event-stream", True),
        ("/system/v1/logs/v1/stream/", None, True),
        ("/v1/range/", "text/event-stream", False),
        ("/v1/range/framework/stream/executor/e/container/c", None, False),
        ("/v1/streams/", None, False),
        ("/v2/component", "text/event-stream", True),
        ("/v2/component/dcos-mesos-master", "application/json, Text/Event-Stream", True),
        ("/v2/component", "application/json", False),
        ("/v2/component", None, False),
    ],
)
def test_is_follow(path: str, accept: str | None, follow: bool) -> None:
    assert is_follow(path, accept) is follow


def request(headers: list[tuple[bytes, bytes]]) -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "scheme": "https",
            "path": "/x",
            "raw_path": b"/x",
            "query_string": b"skip_prev=3",
            "headers": headers,
            "client": ("10.1.1.1", 4000),
            "server": ("gw", 443),
        }
    )


def test_from_request_and_resumed() -> None:
    incoming = [(b"accept", b"text/event-stream"), (b"last-event-id", b"client-id")]
    call = UpstreamCall.from_request(
        request(incoming), path="/v1/stream/", node="S1", uid="alice", token=None
    )
    assert (call.method, call.query, call.client, call.scheme) == (
        "GET",
        b"skip_prev=3",
        "10.1.1.1",
        "https",
    )
    assert call.follow
    resumed = call.resumed("s=1;i=9")
    assert resumed.header(b"last-event-id") == "s=1;i=9"
    assert [k for k, _ in resumed.headers].count(b"last-event-id") == 1
    assert call.header(b"last-event-id") == "client-id"  # the original is unchanged


@pytest.mark.parametrize(
    ("policy", "delays"),
    [
        (ResumePolicy(), [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0, 5.0]),
        (ResumePolicy(attempts=3, first_delay=1.0), [1.0, 2.0, 4.0]),
        (
            ResumePolicy(attempts=10, first_delay=1.0, max_delay=2.0, give_up_after=6.0),
            [1.0, 2.0, 2.0],
        ),
        (ResumePolicy(attempts=0), []),
    ],
)
def test_backoff_is_bounded(policy: ResumePolicy, delays: list[float]) -> None:
    assert list(policy.delays()) == pytest.approx(delays)
