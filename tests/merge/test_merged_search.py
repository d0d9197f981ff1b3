"""grep= through the gateway (issue 14): merged role reads search every agent's part and
never widen what the caller may read; task count routes are authorized as task routes."""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator

import httpx
import orjson
import pytest

from tests.merge.support import DEV, DEVOPS, MARATHON, PREFIX, RUN, Env, Stream, new_run

JSON = {"Accept": "application/json"}
PATTERN = r"line [13579]$"


@pytest.fixture(scope="module")
def run(env: Env) -> str:
    run = new_run()
    for task in (DEV, DEVOPS):
        env.write(task, run, 12)
    env.sync()
    return run


def brute_force(env: Env, run: str, *tasks: object) -> list[str]:
    rx = re.compile(PATTERN)
    out = []
    for task in tasks:
        for entry in env.direct(task, run):  # type: ignore[arg-type]
            fields = entry["fields"]
            assert isinstance(fields, dict)
            if rx.search(fields["MESSAGE"]):
                out.append(str(entry["cursor"]))
    return sorted(out)


def cursors(body: bytes) -> list[str]:
    return sorted(orjson.loads(line)["cursor"] for line in body.splitlines())


def test_a_restricted_users_merged_search_sees_only_their_tasks(env: Env, run: str) -> None:
    dev = {**env.users["dev"], **JSON}
    r = env.get(f"{PREFIX}/role/dev/range/", dev, grep=PATTERN, filter=f"{RUN}:{run}")
    assert r.status_code == 200, r.text
    assert cursors(r.content) == brute_force(env, run, DEV)
    assert DEVOPS.container not in r.text
    admin = {**env.admin, **JSON}
    r = env.get(f"{PREFIX}/role/dev/range/", admin, grep=PATTERN, filter=f"{RUN}:{run}")
    assert cursors(r.content) == brute_force(env, run, DEV, DEVOPS)
    # skip_prev counts matches of the merged whole
    r = env.get(
        f"{PREFIX}/role/dev/range/", admin, grep=PATTERN, filter=f"{RUN}:{run}", skip_prev=3
    )
    lines = [orjson.loads(line)["fields"]["MESSAGE"] for line in r.content.splitlines()]
    count = env.get(f"{PREFIX}/role/dev/count/", dev, grep=PATTERN, filter=f"{RUN}:{run}")
    assert count.json() == {"entries": len(brute_force(env, run, DEV))}
    count = env.get(f"{PREFIX}/role/dev/count/", admin, grep=PATTERN, filter=f"{RUN}:{run}")
    assert count.json() == {"entries": len(brute_force(env, run, DEV, DEVOPS))}
    count = env.get(f"{PREFIX}/app/dev/count/", admin, grep=PATTERN, filter=f"{RUN}:{run}", limit=2)
    assert count.json() == {"entries": 2}
    assert env.get(f"{PREFIX}/app/devops/count/", dev, grep=PATTERN).status_code == 403
    assert len(lines) == 3
    assert all(re.search(PATTERN, m) for m in lines)


def test_bad_patterns_and_contexts_are_400_on_merged_reads(env: Env) -> None:
    admin = env.admin
    r = env.get(f"{PREFIX}/role/dev/range/", admin, grep="(")
    assert r.status_code == 400
    assert "grep" in r.text
    for bad in ({"context": 101}, {"grep": "x", "context": 101}, {"grep": "x", "context": "a"}):
        r = env.get(f"{PREFIX}/role/dev/range/", admin, **bad)
        assert r.status_code == 400
        assert "context" in r.text
    # Context around no match is nothing: without `grep` it is ignored, not a 400.
    r = env.get(f"{PREFIX}/role/dev/range/", admin, context=1, limit=1)
    assert r.status_code == 200, r.text


def test_task_count_route_is_a_task_route(env: Env, run: str) -> None:
    task = f"framework/{MARATHON}/executor/{DEV.executor}/container/{DEV.container}"
    path = f"/system/v1/agent/{DEV.agent_id}/logs/v1/count/{task}"
    dev = env.users["dev"]
    r = env.get(path, dev, grep=PATTERN, filter=f"{RUN}:{run}")
    assert r.status_code == 200, r.text
    assert r.json() == {"entries": len(brute_force(env, run, DEV))}
    devops = f"framework/{MARATHON}/executor/{DEVOPS.executor}/container/{DEVOPS.container}"
    r = env.get(f"/system/v1/agent/{DEVOPS.agent_id}/logs/v1/count/{devops}", dev, grep="x")
    assert r.status_code == 403
    # by task id or name, per file, the file route's v2 parameters
    by_id = f"/system/v1/logs/v2/task/{DEV.task_id}/file"
    r = env.get(f"{by_id}/stdout/count", dev, grep=PATTERN, filter=f"{RUN}:{run}")
    assert r.status_code == 200, r.text
    assert r.json() == {"entries": len(brute_force(env, run, DEV))}
    r = env.get(f"{by_id}/stdout/count", dev, filter=f"{RUN}:{run}", skip=-5)
    assert r.json() == {"entries": 5}
    r = env.get(f"{by_id}/stdout/count", dev, filter=f"{RUN}:{run}", skip=10)
    assert r.json() == {"entries": len(env.direct(DEV, run)) - 10}
    r = env.get(f"{by_id}/stdout/count", dev, filter=f"{RUN}:{run}", cursor="END")
    assert r.json() == {"entries": 1}
    assert env.get(f"{by_id}/stderr/count", dev, filter=f"{RUN}:{run}").json() == {"entries": 0}
    r = env.get(f"{by_id}/stdout/count", dev, filter="STREAM:STDERR")
    assert r.status_code == 400
    assert "filter" in r.text
    assert env.get(f"{by_id}/stdout/count", dev, skip="x").status_code == 400
    assert env.get(f"{by_id}/other/count", dev).status_code == 404
    r = env.get(f"/system/v1/logs/v2/task/{DEVOPS.task_id}/file/stdout/count", dev)
    assert r.status_code == 403
    # the agent's whole journal needs system-logs, with or without grep
    r = env.get(f"/system/v1/agent/{DEV.agent_id}/logs/v1/count/", dev, grep="x")
    assert r.status_code == 403


def test_a_merged_follow_searches_live_lines_for_what_the_caller_may_read(env: Env) -> None:
    run = new_run()
    env.write(DEV, run, 2)
    env.write(DEVOPS, run, 2)
    env.sync()
    url = env.base + f"{PREFIX}/role/dev/stream/"
    with Stream(url, env.users["dev"], grep=PATTERN, filter=f"{RUN}:{run}") as stream:
        assert stream.status == 200
        stream.count(1)  # `line 1` of DEV, written before
        env.write(DEV, run, 10)
        env.write(DEVOPS, run, 10)
        env.sync()
        expected = brute_force(env, run, DEV)
        stream.count(len(expected))
        assert {e.fields["CONTAINER_ID"] for e in stream.events} == {DEV.container}
        assert all(re.search(PATTERN, e.fields["MESSAGE"]) for e in stream.events)
        assert [int(e.fields["SEQ"]) for e in stream.events] == [1, 3, 5, 7, 9]  # not 11


SPARSE = r"line (2|7|8|13)$"  # groups of context that touch, overlap and stand apart


def brute_context(env: Env, run: str, task: object, context: int) -> list[tuple[str, bool, bool]]:
    """grep -C over one task's lines (one source): (cursor, match, gap) in journal order, the
    first group unmarked."""
    entries = env.direct(task, run)  # type: ignore[arg-type]
    rx = re.compile(SPARSE)
    hits = [i for i, e in enumerate(entries) if rx.search(e["fields"]["MESSAGE"])]  # type: ignore[index]
    chosen = sorted(
        {j for i in hits for j in range(i - context, i + context + 1)} & set(range(len(entries)))
    )
    return [
        (str(entries[j]["cursor"]), j in hits, k > 0 and chosen[k - 1] != j - 1)
        for k, j in enumerate(chosen)
    ]


def marked(doc: dict[str, object]) -> tuple[str, bool, bool]:
    return str(doc["cursor"]), bool(doc["match"]), bool(doc.get("gap", False))


def per_task(docs: list[dict[str, object]], task: object) -> list[tuple[str, bool, bool]]:
    container = task.container  # type: ignore[attr-defined]
    return [marked(d) for d in docs if d["fields"]["CONTAINER_ID"] == container]  # type: ignore[index]


@pytest.fixture(scope="module")
def sparse(env: Env) -> str:
    run = new_run()
    for task in (DEV, DEVOPS):
        env.write(task, run, 16)
    env.sync()
    return run


@pytest.mark.parametrize("context", [1, 2])
def test_merged_range_with_context_equals_grep_per_task(
    env: Env, sparse: str, context: int
) -> None:
    admin = {**env.admin, **JSON}
    params = {"grep": SPARSE, "context": context, "filter": f"{RUN}:{sparse}"}
    r = env.get(f"{PREFIX}/role/dev/range/", admin, **params)
    assert r.status_code == 200, r.text
    docs = [orjson.loads(line) for line in r.content.splitlines()]
    for task in (DEV, DEVOPS):
        assert per_task(docs, task) == brute_context(env, sparse, task, context)
    assert len(docs) == sum(len(brute_context(env, sparse, t, context)) for t in (DEV, DEVOPS))
    # a restricted caller: only their task's matches and context
    dev = {**env.users["dev"], **JSON}
    r = env.get(f"{PREFIX}/role/dev/range/", dev, **params)
    docs = [orjson.loads(line) for line in r.content.splitlines()]
    assert [marked(d) for d in docs] == brute_context(env, sparse, DEV, context)
    # text: grep's `--` between groups
    r = env.get(f"{PREFIX}/app/dev/range/", env.admin, **params)
    lines = r.text.splitlines()
    groups = brute_context(env, sparse, DEV, context)
    assert lines.count("--") == sum(gap for *_, gap in groups)
    assert len(lines) - lines.count("--") == len(groups)
    # skip_prev counts matches: the last 2 of the whole, with their context
    r = env.get(f"{PREFIX}/app/dev/range/", admin, skip_prev=2, **params)
    docs = [orjson.loads(line) for line in r.content.splitlines()]
    expected = brute_context(env, sparse, DEV, context)
    # (from the second last match on: its before-context is line 7's, already sent)
    second_last = [i for i, (_, m, _) in enumerate(expected) if m][-2]
    assert [c for c, *_ in per_task(docs, DEV)] == [c for c, *_ in expected[second_last:]]
    assert sum(m for _, m, _ in per_task(docs, DEV)) == 2
    # limit counts matches: the first one with its context; skip_next skips matches
    r = env.get(f"{PREFIX}/app/dev/range/", admin, limit=1, **params)
    docs = [orjson.loads(line) for line in r.content.splitlines()]
    first = next(i for i, (_, m, _) in enumerate(expected) if m)
    assert [marked(d) for d in docs] == expected[: first + context + 1]
    r = env.get(f"{PREFIX}/app/dev/range/", admin, skip_next=3, **params)
    docs = [orjson.loads(line) for line in r.content.splitlines()]
    last = [i for i, (_, m, _) in enumerate(expected) if m][-1]
    assert [c for c, *_ in per_task(docs, DEV)][-context - 1 :] == [c for c, *_ in expected[last:]]
    assert sum(m for _, m, _ in per_task(docs, DEV)) == 1


def _sse(lines: Iterator[str]) -> Iterator[tuple[str | None, dict[str, object]]]:
    event_id: str | None = None
    for line in lines:
        if line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("data: "):
            yield event_id, orjson.loads(line[6:])
            event_id = None


def _events(
    env: Env, headers: dict[str, str], last: set[str], **params: object
) -> list[tuple[str | None, dict[str, object]]]:
    """Events until every cursor in `last` came."""
    url = env.base + f"{PREFIX}/role/dev/stream/"
    out: list[tuple[str | None, dict[str, object]]] = []
    waiting = set(last)
    with httpx.stream(
        "GET",
        url,
        params=params,  # type: ignore[arg-type]
        headers={**headers, "Accept": "text/event-stream"},
        timeout=30,
    ) as r:
        assert r.status_code == 200, r.read()
        for event in _sse(r.iter_lines()):
            out.append(event)
            waiting.discard(str(event[1]["cursor"]))
            if not waiting:
                break
    return out


def _last_of_each_task(events: list[tuple[str | None, dict[str, object]]]) -> set[str]:
    last = {str(d["fields"]["CONTAINER_ID"]): str(d["cursor"]) for _, d in events}  # type: ignore[index]
    return set(last.values())


def test_merged_follow_with_context_resumes_exactly(env: Env, sparse: str) -> None:
    """A merged follow with context sends each task's grep -C (before-context without an
    id); resumed from any event id, every task goes on exactly as the uninterrupted follow
    did after that event (its marks too), only before-context cut by the break may come again."""
    params = {"grep": SPARSE, "context": 1, "filter": f"{RUN}:{sparse}"}
    whole = {t.container: brute_context(env, sparse, t, 1) for t in (DEV, DEVOPS)}
    assert sum(gap for *_, gap in whole[DEV.container]) == 2
    ends = {v[-1][0] for v in whole.values()}
    follow = _events(env, env.admin, ends, **params)
    for task in (DEV, DEVOPS):
        assert per_task([d for _, d in follow], task) == whole[task.container]
    late = [d for i, d in follow if i is None]
    assert late  # before-context comes without an id
    assert all(not d["match"] for d in late)
    ids = [k for k, (i, _) in enumerate(follow) if i is not None]
    for k in ids[:-1]:
        rest = follow[k + 1 :]
        expected = {t.container: per_task([d for _, d in rest], t) for t in (DEV, DEVOPS)}
        resumed = {**env.admin, "Last-Event-ID": str(follow[k][0])}
        again = _events(env, resumed, _last_of_each_task(rest), **params)
        for task in (DEV, DEVOPS):
            got = per_task([d for _, d in again], task)
            # what comes again: only before-context that preceded the break
            extra = got[: len(got) - len(expected[task.container])]
            assert got[len(extra) :] == expected[task.container], (k, task.name)
            assert all(not m for _, m, _ in extra)


def test_merged_download_is_the_range_gzipped_for_what_the_caller_may_read(
    env: Env, run: str
) -> None:
    dev = {**env.users["dev"], **JSON}
    params = {"grep": PATTERN, "filter": f"{RUN}:{run}"}
    whole = env.get(f"{PREFIX}/role/dev/range/", dev, **params)
    r = env.get(f"{PREFIX}/role/dev/range/download", dev, postfix="x y", **params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/gzip"
    assert r.headers["content-disposition"] == "attachment; filename=role-dev-x_y.log.gz"
    body = gzip.decompress(r.content)  # httpx does not undo a gzip body without its header
    assert cursors(body) == cursors(whole.content) == brute_force(env, run, DEV)
    assert DEVOPS.container.encode() not in body
    r = env.get(f"{PREFIX}/app/dev/worker/range/download", env.admin, **params)
    assert r.headers["content-disposition"] == "attachment; filename=app-dev.worker.log.gz"
    text = env.get(f"{PREFIX}/app/dev/worker/range/", env.admin, **params)
    assert text.headers["content-type"].startswith("text/plain")
    assert gzip.decompress(r.content) == text.content
    assert text.text.count("/dev/worker dev-0 line") == len(brute_force(env, run, DEV))
    assert env.get(f"{PREFIX}/app/devops/range/download", dev).status_code == 403
    assert env.get(f"{PREFIX}/role/dev/range/download", {}).status_code == 401
