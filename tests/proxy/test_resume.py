"""A follow stream whose node goes away mid-event is resumed from the last whole event, and
every event reaches the client exactly once; other bodies cut short stay visibly cut."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import httpx
import pytest

from app.proxy import ResumePolicy
from tests.node.test_follow import SseClient
from tests.proxy.conftest import Gateway
from tests.proxy.harness import serve_in_thread
from tests.proxy.upstreams import Reflector, TornStream

RECONNECTING = ": upstream reconnecting"


def read(client: SseClient, until: int | None = None) -> tuple[list[int], list[str]]:
    """Event ids and comments, until event `until` or the end of the stream."""
    ids: list[int] = []
    comments: list[str] = []
    for event_id, data, comment in client.events():
        if data is not None:
            assert event_id is not None
            assert data == {"n": int(event_id)}
            ids.append(int(event_id))
            if ids[-1] == until or len(ids) > 20:  # a stream that repeats itself must end too
                break
        if comment is not None:
            comments.append(comment)
    client.close()
    return ids, comments


@pytest.fixture
def torn() -> Iterator[Callable[..., tuple[str, TornStream]]]:
    """Starts a `TornStream` on 127.0.0.2 (options as its fields); stopped after the test."""
    with contextlib.ExitStack() as stack:

        def start(**options: object) -> tuple[str, TornStream]:
            app = TornStream(**options)  # type: ignore[arg-type]
            return stack.enter_context(serve_in_thread(app, "127.0.0.2")), app

        yield start


def test_a_torn_event_is_sent_again_whole_and_nothing_twice(
    gateway: Gateway, torn: Callable[..., tuple[str, TornStream]]
) -> None:
    base, app = torn()
    gateway.nodes["torn-1"] = base
    resumes = gateway.metrics.resumes
    ids, comments = read(SseClient(gateway.url("torn-1", "/v1/stream/")), until=5)
    assert ids == [1, 2, 3, 4, 5]
    assert RECONNECTING in comments
    assert app.last_event_ids == [None, "2"]
    assert gateway.metrics.resumes == resumes + 1


def test_a_refused_resume_ends_the_stream_after_the_whole_events(
    gateway: Gateway, torn: Callable[..., tuple[str, TornStream]]
) -> None:
    base, app = torn(resume_status=400)
    gateway.nodes["torn-2"] = base
    ids, _ = read(SseClient(gateway.url("torn-2", "/v1/stream/")))
    assert ids == [1, 2]
    assert app.last_event_ids == [None, "2"]


def test_resuming_gives_up_after_the_policy(
    make_gateway: Callable[..., Gateway], torn: Callable[..., tuple[str, TornStream]]
) -> None:
    gateway = make_gateway(resume=ResumePolicy(attempts=3, first_delay=0.05))
    base, app = torn(resume_status=503)
    gateway.nodes["torn-3"] = base
    ids, comments = read(SseClient(gateway.url("torn-3", "/v1/stream/")))
    assert ids == [1, 2]
    assert comments.count(RECONNECTING) == 3
    assert app.last_event_ids == [None, "2", "2", "2"]
    assert gateway.metrics.upstream_errors["status_503"] == 3


def test_a_range_cut_short_is_not_passed_off_as_complete(
    gateway: Gateway, reflector: tuple[str, Reflector]
) -> None:
    base, _ = reflector
    gateway.nodes["cut"] = base
    broken = gateway.metrics.upstream_errors["broken"]
    url = f"{gateway.base}/system/v1/agent/cut/logs/truncated"
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(url, timeout=10)
    assert gateway.metrics.upstream_errors["broken"] == broken + 1
