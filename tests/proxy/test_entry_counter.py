"""`EntryCounter`: entries in a relayed body, whatever the chunk boundaries."""

from __future__ import annotations

import pytest

from app.proxy.metrics import EntryCounter

SSE_BODY = (
    b'id: s=1\ndata: {"fields":{"MESSAGE":"a"}}\n\n'
    b": ping\n\n"
    b'data: {"fields":{"MESSAGE":"b\\ndata: not an event"}}\n\n'
    b'id: s=3\ndata: {"fields":{"MESSAGE":"c"}}\n\n'
)
NDJSON_BODY = b'{"cursor":"a"}\n{"cursor":"b"}\n{"cursor":"c"}\n'


def count(media_type: str, chunks: list[bytes]) -> int:
    counter = EntryCounter.for_media_type(media_type)
    assert counter is not None
    return sum(counter.feed(chunk) for chunk in chunks)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 64, 10_000])
def test_events_are_counted_across_any_chunking(size: int) -> None:
    chunks = [SSE_BODY[i : i + size] for i in range(0, len(SSE_BODY), size)]
    assert count("text/event-stream", chunks) == 3


def test_every_split_point_of_an_event_stream() -> None:
    for cut in range(len(SSE_BODY) + 1):
        assert count("text/event-stream", [SSE_BODY[:cut], SSE_BODY[cut:]]) == 3, cut


@pytest.mark.parametrize("media_type", ["application/json", "text/plain"])
def test_lines_are_entries(media_type: str) -> None:
    assert count(media_type, [NDJSON_BODY[:5], NDJSON_BODY[5:]]) == 3


@pytest.mark.parametrize("media_type", ["application/gzip", "application/octet-stream", ""])
def test_other_bodies_are_not_counted(media_type: str) -> None:
    assert EntryCounter.for_media_type(media_type) is None
