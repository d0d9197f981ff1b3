"""Live follow over a real journal: resume, shared tail, disconnects, rotation, heartbeat."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from app.devcluster.journald import JournaldNamespace
from tests.support.journal import Sender
from tests.support.servers import node_reader

SSE = {"accept": "text/event-stream"}


class SseClient:
    """A minimal SSE reader over one streaming response."""

    def __init__(self, url: str, headers: dict[str, str] | None = None) -> None:
        self._cm = httpx.stream("GET", url, headers={**SSE, **(headers or {})}, timeout=30)
        self.response = self._cm.__enter__()
        self._lines = self.response.iter_lines()

    def events(self) -> Iterator[tuple[str | None, dict[str, object] | None, str | None]]:
        """(id, data, comment) for each event or comment block."""
        event_id: str | None = None
        data: dict[str, object] | None = None
        comment: str | None = None
        for line in self._lines:
            if line == "":
                yield event_id, data, comment
                event_id = data = comment = None
            elif line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("data: "):
                data = orjson.loads(line[6:])
            elif line.startswith(":"):
                comment = line

    def take(self, n: int) -> list[tuple[str, dict[str, object]]]:
        out = []
        for event_id, data, _ in self.events():
            if data is not None:
                assert event_id is not None
                out.append((event_id, data))
                if len(out) == n:
                    break
        return out

    def close(self) -> None:
        self._cm.__exit__(None, None, None)


def seqs(events: list[tuple[str, dict[str, object]]]) -> list[int]:
    return [int(data["fields"]["SEQ"]) for _, data in events]  # type: ignore[index]


def metric(base: str, name: str) -> int:
    text = httpx.get(f"{base}/metrics", timeout=5).text
    m = re.search(rf"^{name} (\d+)$", text, re.M)
    assert m, text
    return int(m.group(1))


@pytest.fixture
def setup(journal_namespace: JournaldNamespace) -> Iterator[tuple[str, Sender]]:
    sender = Sender(journal_namespace)
    with node_reader(journal_namespace.name, "--no-auth", "--heartbeat=0.5") as base:
        yield base, sender
    sender.close()


def send_range(sender: Sender, lo: int, hi: int, **extra: str) -> None:
    for i in range(lo, hi):
        sender.send({"MESSAGE": f"line {i}", "SEQ": str(i), **extra})


def test_stream_replays_then_follows_and_resumes_with_last_event_id(
    setup: tuple[str, Sender],
) -> None:
    base, sender = setup
    send_range(sender, 0, 10, K="a")
    client = SseClient(f"{base}/v1/stream/?filter=K:a")
    first = client.take(10)
    assert seqs(first) == list(range(10))
    send_range(sender, 10, 15, K="a")
    assert seqs(client.take(5)) == list(range(10, 15))
    client.close()
    # Reconnect after event 6: exactly 7.. follow, whatever skip_prev says.
    resume = SseClient(f"{base}/v1/stream/?filter=K:a&skip_prev=3", {"last-event-id": first[6][0]})
    assert seqs(resume.take(8)) == list(range(7, 15))
    send_range(sender, 15, 17, K="a")
    assert seqs(resume.take(2)) == [15, 16]
    resume.close()


def test_joining_the_shared_tail_under_writes_loses_and_repeats_nothing(
    setup: tuple[str, Sender],
) -> None:
    base, sender = setup
    send_range(sender, 0, 50, K="w")
    sender.sync()
    stop = threading.Event()
    written = [50]

    def writer() -> None:
        while not stop.is_set() and written[0] < 3000:
            send_range(sender, written[0], written[0] + 10, K="w")
            written[0] += 10
            time.sleep(0.002)

    thread = threading.Thread(target=writer)
    thread.start()
    clients = []
    try:
        # Followers join at different moments while lines keep arriving.
        for _ in range(5):
            clients.append(SseClient(f"{base}/v1/stream/?filter=K:w"))
            time.sleep(0.05)
        time.sleep(0.3)
    finally:
        stop.set()
        thread.join()
    total = written[0]
    for client in clients:
        assert seqs(client.take(total)) == list(range(total))
        client.close()


def test_followers_share_one_handle_and_release_it_on_disconnect(
    setup: tuple[str, Sender],
) -> None:
    base, sender = setup
    send_range(sender, 0, 3)
    sender.sync()
    clients = [SseClient(f"{base}/v1/stream/?skip_prev=1") for _ in range(20)]
    for c in clients:
        c.take(1)
    assert metric(base, "logway_node_followers") == 20
    handles = metric(base, "logway_node_journal_handles")
    assert handles <= 1 + 8  # the live tail and at most the pool's idle handles
    for c in clients:
        c.close()
    deadline = time.monotonic() + 1.0
    while metric(base, "logway_node_followers") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert metric(base, "logway_node_followers") == 0


def test_stream_survives_rotation_and_vacuum(
    setup: tuple[str, Sender], journal_namespace: JournaldNamespace
) -> None:
    base, sender = setup
    client = SseClient(f"{base}/v1/stream/?filter=K:r")
    send_range(sender, 0, 5, K="r")
    assert seqs(client.take(5)) == list(range(5))
    journal_namespace.rotate()
    send_range(sender, 5, 10, K="r")
    assert seqs(client.take(5)) == list(range(5, 10))
    journal_namespace.rotate()
    journal_namespace.vacuum_files(1)
    send_range(sender, 10, 15, K="r")
    assert seqs(client.take(5)) == list(range(10, 15))
    client.close()


def test_idle_sse_stream_gets_ping_comments(setup: tuple[str, Sender]) -> None:
    base, sender = setup
    send_range(sender, 0, 1, K="p")
    client = SseClient(f"{base}/v1/stream/?filter=K:p")
    comments = []
    for _, _data, comment in client.events():
        if comment is not None:
            comments.append(comment)
            break
    assert comments == [": ping"]
    client.close()


def test_text_stream_follows(setup: tuple[str, Sender]) -> None:
    base, sender = setup
    send_range(sender, 0, 2, K="t")
    with httpx.stream("GET", f"{base}/v1/stream/?filter=K:t", timeout=10) as r:
        lines = r.iter_lines()
        assert next(lines).endswith(": line 0")
        assert next(lines).endswith(": line 1")
        send_range(sender, 2, 3, K="t")
        assert next(lines).endswith(": line 2")


def test_v2_component_sse_follows_with_ids(setup: tuple[str, Sender]) -> None:
    base, sender = setup
    send_range(sender, 0, 3, UNIT="svc.service")
    sender.sync()
    client = SseClient(f"{base}/v2/component/svc.service?skip=-1")
    got = client.take(1)
    assert seqs(got) == [2]
    assert got[0][0].startswith("s=")
    send_range(sender, 3, 4, UNIT="svc.service")
    assert seqs(client.take(1)) == [3]
    client.close()
