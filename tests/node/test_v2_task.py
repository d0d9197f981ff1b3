"""dcos-log's v2 task file routes, served from a real journald namespace by a real node reader.

The lines are written as the shipper writes them (AGENT_ID, FRAMEWORK_ID, EXECUTOR_ID,
CONTAINER_ID, STREAM, TASK_ID when it has one; `app/shipper/fields.py`).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import orjson
import pytest

from app.core.audience import url_audience
from app.devcluster.journald import JournaldNamespace
from app.devcluster.signing_key import DevKeys
from tests.node.test_follow import SseClient
from tests.support.journal import Sender, sending_namespace
from tests.support.servers import node_reader

AGENT, FW, EX, CT = "S0", "fw-1", "ex-1", "ct-1"
RUN = f"/v2/task/frameworks/{FW}/executors/{EX}/runs/{CT}"
POD = f"/v2/task/frameworks/{FW}/executors/pod-ex/runs/pod-c/tasks"
BINARY = b"caf\xe9 \xff\xfe end"
CURSOR = re.compile(r"^s=[0-9a-f]+;i=[0-9a-f]+;b=[0-9a-f]+;m=[0-9a-f]+;t=[0-9a-f]+;x=[0-9a-f]+$")
ONLY_STDOUT_STDERR = "a task's journal has only `stdout` and `stderr`"
GATEWAY_UID = "logway-gateway"
HANG_GUARD = 30.0  # a broken stream end fails the test instead of hanging it


def task(cid: str = CT, executor: str = EX, **extra: str) -> dict[str, str]:
    return {
        "AGENT_ID": AGENT,
        "FRAMEWORK_ID": FW,
        "EXECUTOR_ID": executor,
        "CONTAINER_ID": cid,
        **extra,
    }


def out(message: str | bytes, **fields: str) -> dict[str, str | bytes]:
    return {**fields, "STREAM": "STDOUT", "MESSAGE": message}


def err(message: str | bytes, **fields: str) -> dict[str, str | bytes]:
    return {**fields, "STREAM": "STDERR", "MESSAGE": message}


@pytest.fixture(scope="module")
def namespace() -> Iterator[JournaldNamespace]:
    with sending_namespace() as (ns, sender):
        for i in range(10):
            sender.send(out(f"out {i}", SEQ=str(i), **task()))
            if i < 5:
                sender.send(err(f"err {i}", SEQ=str(i), **task()))
        # Lines of other tasks, or of no file, that must never show up in ct-1's.
        sender.send(out("other container", **task("ct-2")))
        sender.send(out("other framework", **{**task(), "FRAMEWORK_ID": "fw-2"}))
        sender.send(out("nested container", **task(f"{CT}.inner")))
        sender.send({"MESSAGE": "executor line without STREAM", **task()})
        # A pod: both tasks run in pod-c's executor, each in its own nested container.
        sender.send(out("a out", **task("pod-c.a", "pod-ex", TASK_ID="pod.task-a")))
        sender.send(err("a err", **task("pod-c.a", "pod-ex", TASK_ID="pod.task-a")))
        sender.send(out("b out", **task("pod-c.b", "pod-ex", TASK_ID="pod.task-b")))
        sender.send(out(BINARY, **task("bin-ct", "bin-ex")))
        sender.send(out("html <b> & </b>", **task("bin-ct", "bin-ex")))
        ns.sync()
        yield ns


@pytest.fixture(scope="module")
def base(namespace: JournaldNamespace) -> Iterator[str]:
    with node_reader(namespace.name, "--no-auth", "--heartbeat=0.5") as url:
        yield url


@pytest.fixture
def sender(namespace: JournaldNamespace) -> Iterator[Sender]:
    s = Sender(namespace)
    yield s
    s.close()


def get(base: str, path: str, **headers: str) -> httpx.Response:
    return httpx.get(base + path, headers=headers, timeout=10)


def outs(*seqs: int) -> bytes:
    return b"".join(b"out %d\n" % i for i in seqs)


def messages(events: list[tuple[str, dict[str, object]]]) -> list[object]:
    return [data["fields"]["MESSAGE"] for _, data in events]  # type: ignore[index]


def test_stdout_and_stderr_are_the_tasks_raw_lines(base: str) -> None:
    r = get(base, f"{RUN}/stdout")
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain"
    assert r.headers["cache-control"] == "no-cache"
    assert "x-journal-skip-prev" not in r.headers
    # No other container, framework, stream or STREAM-less line; no date prefix.
    assert r.content == outs(*range(10))
    r = get(base, f"{RUN}/stderr", accept="text/plain")
    assert r.content == b"".join(b"err %d\n" % i for i in range(5))


def test_a_nested_container_chain_is_matched_whole(base: str) -> None:
    nested = f"/v2/task/frameworks/{FW}/executors/{EX}/runs/{CT}.inner/stdout"
    assert get(base, nested).content == b"nested container\n"


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?cursor=END&skip=-3", outs(7, 8, 9)),  # `dcos task log --lines=3`
        ("?cursor=END", outs(9)),
        ("?skip=-2", outs(8, 9)),
        ("?cursor=END&skip=-100", outs(*range(10))),
        ("?cursor=BEG&limit=2", outs(0, 1)),
        ("?cursor=BEG&skip=-3&limit=1", outs(0)),
        ("?skip=2&limit=3", outs(2, 3, 4)),
        ("?cursor=END&skip=-4&limit=2", outs(6, 7)),
        ("?filter=SEQ:3", outs(3)),
        ("?filter=STREAM:STDOUT&filter=FRAMEWORK_ID:fw-1&limit=1", outs(0)),
        # journald ORs one field's values: this must not add ct-2's line.
        ("?filter=CONTAINER_ID:ct-1&filter=CONTAINER_ID:ct-2", outs(*range(10))),
    ],
)
def test_positioning_and_filters_as_v2_component(base: str, query: str, expected: bytes) -> None:
    r = get(base, f"{RUN}/stdout{query}", accept="text/plain")
    assert r.status_code == 200, r.text
    assert r.content == expected


def test_json_is_the_v1_entries(base: str) -> None:
    r = get(base, f"{RUN}/stderr?limit=2", accept="application/json")
    assert r.headers["content-type"] == "application/json"
    entries = [orjson.loads(line) for line in r.content.splitlines()]
    assert [e["fields"]["MESSAGE"] for e in entries] == ["err 0", "err 1"]
    for e in entries:
        assert list(e) == ["fields", "cursor", "monotonic_timestamp", "realtime_timestamp"]
        assert e["fields"]["STREAM"] == "STDERR"
        assert e["fields"]["CONTAINER_ID"] == CT
        assert CURSOR.match(e["cursor"])


def test_a_cursor_or_last_event_id_continues_after_its_entry(base: str) -> None:
    r = get(base, f"{RUN}/stdout", accept="application/json")
    cursors = [orjson.loads(line)["cursor"] for line in r.content.splitlines()]
    after_3 = get(base, f"{RUN}/stdout?cursor={quote(cursors[3], safe='')}&limit=2")
    assert after_3.content == outs(4, 5)
    # Last-Event-ID wins over ?cursor and ?skip.
    resumed = get(base, f"{RUN}/stdout?cursor=END&skip=-1", **{"last-event-id": cursors[6]})
    assert resumed.content == outs(7, 8, 9)


def test_pod_tasks_are_found_by_task_id(base: str) -> None:
    assert get(base, f"{POD}/pod.task-a/stdout").content == b"a out\n"
    assert get(base, f"{POD}/pod.task-a/stderr").content == b"a err\n"
    assert get(base, f"{POD}/pod.task-b/stdout?cursor=END&skip=-5").content == b"b out\n"
    assert get(base, f"{POD}/pod.task-b/stderr").status_code == 204
    r = get(base, f"{POD}/pod.task-a/stdout", accept="application/json")
    assert orjson.loads(r.content)["fields"]["CONTAINER_ID"] == "pod-c.a"


@pytest.mark.parametrize(
    "path",
    [
        f"{RUN}/stdout?filter=SEQ:nope",
        f"/v2/task/frameworks/{FW}/executors/{EX}/runs/ct-2/stderr",
        f"/v2/task/frameworks/{FW}/executors/{EX}/runs/no-such-run/stdout",
    ],
)
def test_an_empty_range_is_204_without_body(base: str, path: str) -> None:
    r = get(base, path)
    assert r.status_code == 204
    assert r.content == b""


@pytest.mark.parametrize(
    ("path", "headers", "named"),
    [
        (f"{RUN}/stdout?skip=abc", {}, "skip"),
        (f"{RUN}/stdout?skip=1.5", {}, "skip"),
        (f"{RUN}/stdout?limit=-3", {}, "limit"),
        (f"{RUN}/stdout?cursor=BEGIN", {}, "cursor"),
        (f"{RUN}/stdout?cursor=s%3D1%3Bi%3D2%3Bb%3D3%3Bm%3D4%3Bt%3D5%3Bx%3D6", {}, "`cursor`"),
        (f"{RUN}/stdout", {"last-event-id": "12"}, "Last-Event-ID"),
        (f"{RUN}/stdout?filter=NOCOLON", {}, "filter"),
        (f"{RUN}/stdout?since=yesterday", {}, "since"),
        # A filter that would reach beyond the path's task.
        (f"{RUN}/stdout?filter=STREAM:STDERR", {}, "filter STREAM:STDERR"),
        (f"{RUN}/stdout?filter=FRAMEWORK_ID:fw-2", {}, "filter FRAMEWORK_ID:fw-2"),
        (f"{POD}/pod.task-a/stdout?filter=TASK_ID:pod.task-b", {}, "filter TASK_ID"),
        (f"/v2/task/frameworks/{FW}/executors/{EX}/runs/ct%0A1/stdout", {}, "container_id"),
        (f"{POD}/pod%00a/stdout", {}, "task_id"),
        (f"/v2/task/frameworks/{FW}/executors/e%0A/runs/{CT}/browse", {}, "executor_id"),
    ],
)
def test_bad_input_is_a_400_naming_the_parameter(
    base: str, path: str, headers: dict[str, str], named: str
) -> None:
    r = get(base, path, **headers)
    assert r.status_code == 400, r.text
    assert named in r.text
    assert "Traceback" not in r.text


@pytest.mark.parametrize(
    "rest",
    [
        "browse",
        "files/browse",
        "download",
        "stdout/download",
        "STDOUT",
        "app.log",
        "tasks",
        "stdout/",
        "tasks/pod.task-a/browse",
        "tasks/pod.task-a/files/browse",
        "tasks/pod.task-a/stdout/download",
    ],
)
def test_other_files_are_404_saying_what_there_is(base: str, rest: str) -> None:
    r = get(base, f"{RUN}/{rest}")
    assert r.status_code == 404
    assert ONLY_STDOUT_STDERR in r.text


@pytest.mark.parametrize(
    "path",
    [
        "/v2/task/x",
        RUN,
        f"/v2/task/frameworks/{FW}/executors/{EX}/runs",
        f"/v2/task/frameworks/{FW}/executors/{EX}/stdout",
        f"/v2/tasks/frameworks/{FW}/executors/{EX}/runs/{CT}/stdout",
    ],
)
def test_unknown_routes_are_still_404(base: str, path: str) -> None:
    r = get(base, path)
    assert r.status_code == 404
    assert ONLY_STDOUT_STDERR not in r.text


def test_the_other_routes_are_not_shadowed(base: str) -> None:
    assert get(base, "/v2/component?cursor=END").status_code == 200
    assert get(base, f"/v1/range/framework/{FW}/executor/{EX}/container/{CT}").status_code == 200


def test_v1_task_filters_narrow_the_same_way(base: str) -> None:
    v1 = f"/v1/range/framework/{FW}/executor/{EX}/container/{CT}"
    both = get(base, f"{v1}?filter=CONTAINER_ID:ct-1&filter=CONTAINER_ID:ct-2&filter=STREAM:STDOUT")
    assert [line.split(b": ", 1)[1] for line in both.content.splitlines()] == [
        b"out %d" % i for i in range(10)
    ]
    r = get(base, f"{v1}?filter=CONTAINER_ID:ct-2")
    assert r.status_code == 400
    assert "other container" not in r.text


def test_non_utf8_message_bytes_are_kept(base: str) -> None:
    path = "/v2/task/frameworks/fw-1/executors/bin-ex/runs/bin-ct/stdout"
    assert get(base, path).content == BINARY + b"\nhtml <b> & </b>\n"
    r = get(base, path, accept="application/json")
    assert orjson.loads(r.content.splitlines()[0])["fields"]["MESSAGE"] == list(BINARY)
    client = SseClient(f"{base}{path}?cursor=BEG")
    try:
        assert messages(client.take(2)) == [list(BINARY), "html <b> & </b>"]
    finally:
        client.close()


def test_sse_events_have_journald_ids_and_the_file_readers_data(base: str) -> None:
    with httpx.stream(
        "GET",
        f"{base}{RUN}/stderr?cursor=END&skip=-1",
        headers={"accept": "text/event-stream"},
        timeout=10,
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-accel-buffering"] == "no"
        lines = r.iter_lines()
        event_id, data, blank = next(lines), next(lines), next(lines)
    assert event_id.startswith("id: ")
    assert CURSOR.match(event_id[4:])
    assert data == (
        'data: {"fields":{"AGENT_ID":"S0","CONTAINER_ID":"ct-1","EXECUTOR_ID":"ex-1",'
        '"FILE":"stderr","FRAMEWORK_ID":"fw-1","MESSAGE":"err 4"}}'
    )
    assert blank == ""
    # Go's JSON escapes, as dcos-log marshalled the event.
    path = "/v2/task/frameworks/fw-1/executors/bin-ex/runs/bin-ct/stdout?cursor=END"
    with httpx.stream("GET", base + path, headers={"accept": "text/event-stream"}, timeout=10) as r:
        lines = r.iter_lines()
        next(lines)
        assert r'"MESSAGE":"html \u003cb\u003e \u0026 \u003c/b\u003e"' in next(lines)


def test_sse_follows_live_and_resumes_after_last_event_id(base: str, sender: Sender) -> None:
    live = task("live-1")
    for i in range(5):
        sender.send(out(f"live {i}", **live))
        sender.send(err(f"noise {i}", **live))
    sender.sync()
    client = SseClient(f"{base}{RUN.replace(CT, 'live-1')}/stdout?cursor=BEG")
    try:
        first = client.take(5)
        assert messages(first) == [f"live {i}" for i in range(5)]
        for i in range(5, 8):
            sender.send(out(f"live {i}", **live))
        arrived = client.take(3)
        assert messages(arrived) == [f"live {i}" for i in range(5, 8)]
    finally:
        client.close()
    for i in range(8, 10):
        sender.send(out(f"live {i}", **live))
    seen = first + arrived
    # The reconnect names event 4; ?cursor and ?skip give way to it.
    resumed = SseClient(
        f"{base}{RUN.replace(CT, 'live-1')}/stdout?cursor=END&skip=-1",
        {"last-event-id": seen[4][0]},
    )
    try:
        again = resumed.take(5)
        assert messages(again) == [f"live {i}" for i in range(5, 10)]
        assert [event_id for event_id, _ in again[:3]] == [event_id for event_id, _ in seen[5:]]
        sender.send(out("live 10", **live))
        assert messages(resumed.take(1)) == ["live 10"]
    finally:
        resumed.close()


def test_an_idle_follow_gets_heartbeats(base: str) -> None:
    client = SseClient(f"{base}{POD}/pod.task-b/stdout?cursor=END")
    try:
        seen: list[str] = []
        for _, data, comment in client.events():
            if data is not None:
                seen.append(data["fields"]["MESSAGE"])  # type: ignore[index]
            if comment is not None:
                break
        assert seen == ["b out"]
        assert comment == ": ping"
    finally:
        client.close()


@pytest.fixture
def keys(tmp_path: Path) -> DevKeys:
    return DevKeys.create(tmp_path / "keys")


@pytest.fixture
def authed(journal_namespace: JournaldNamespace, keys: DevKeys) -> Iterator[str]:
    sender = Sender(journal_namespace)
    sender.send(out("secret line", **task()))
    sender.sync()
    sender.close()
    with node_reader(
        journal_namespace.name, f"--public-key={keys.public_path}", f"--allow-uid={GATEWAY_UID}"
    ) as url:
        yield url


@pytest.mark.parametrize("rest", ["stdout", "stderr", "browse", "tasks/t/stdout"])
def test_task_routes_need_the_nodes_credential(authed: str, keys: DevKeys, rest: str) -> None:
    r = get(authed, f"{RUN}/{rest}")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "acsjwt"
    other = get(
        authed,
        f"{RUN}/{rest}",
        authorization=f"token={keys.token('alice', audience=url_audience(authed))}",
    )
    assert other.status_code == 401
    assert "secret line" not in other.text


def test_with_the_nodes_credential_lines_flow_and_a_follow_ends_with_the_token(
    authed: str, keys: DevKeys
) -> None:
    ok = get(
        authed,
        f"{RUN}/stdout",
        authorization=f"token={keys.token(GATEWAY_UID, audience=url_audience(authed))}",
    )
    assert ok.content == b"secret line\n"
    token = keys.token(GATEWAY_UID, lifetime=2, audience=url_audience(authed))
    headers = {"authorization": f"token={token}", "accept": "text/event-stream"}
    guard = time.monotonic() + HANG_GUARD
    with httpx.stream("GET", f"{authed}{RUN}/stdout?cursor=BEG", headers=headers, timeout=20) as r:
        assert r.status_code == 200
        body = b""
        for chunk in r.iter_bytes():
            body += chunk
            assert time.monotonic() < guard, "the follow outlived its token"
    assert b'"MESSAGE":"secret line"' in body
