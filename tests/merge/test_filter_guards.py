"""From the attacker's side: a restricted caller's filter that names one of its own containers
*and* a foreign container on the same agent returns only its own container's lines, on every
merged and task route, counts included (issue 20).

journald ORs the values of one field, so a `CONTAINER_ID:<foreign>` forwarded to a node
reader beside the caller's own container would widen the read to the foreign task's lines.
The merged routes narrow with such filters and never forward them (app/merge/plan.py
`split_filters`); the task routes' node reader drops a filter on a field the path fixes when
one of its values is the path's (app/journal/params.py `within_path`).

The filter pairs EXECUTOR_ID values too: a task route also matches the path's EXECUTOR_ID,
which alone would hide a forwarded foreign CONTAINER_ID; with both fields ORed the foreign
task's lines would match. (FRAMEWORK_ID is Marathon's for both tasks.)
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass

import httpx
import orjson
import pytest

from tests.merge.support import (
    DEADLINE,
    DEV,
    DEVOPS,
    MARATHON,
    PREFIX,
    RUN,
    WEB,
    Env,
    TaskDef,
    new_run,
)

LINES = 6


@dataclass(frozen=True)
class Case:
    uid: str
    own: TaskDef
    foreign: TaskDef  # on the same agent as `own`, not readable by `uid`

    def __str__(self) -> str:
        return f"{self.uid}-{self.own.name}+{self.foreign.name}"


# dev holds app_id:/dev (DEV on S0 beside /prod/web); prodrole holds role prod (WEB[1] on S1
# beside /devops/api, whose role is dev).
DEV_CASE = Case("dev", DEV, WEB[0])
PROD_CASE = Case("prodrole", WEB[1], DEVOPS)
CASES = (DEV_CASE, PROD_CASE)


def merged_paths(case: Case) -> list[str]:
    app = case.own.app.rsplit("/", 1)[0]  # the parent app: /dev, /prod
    return [
        f"{PREFIX}/role/{case.own.role}/range/",
        f"{PREFIX}/role/{case.own.role}/stream/",
        f"{PREFIX}/app{app}/range/",
        f"{PREFIX}/app{app}/stream/",
        f"{PREFIX}/app{case.own.app}/range/",
        f"{PREFIX}/role/{case.own.role}/count/",
        f"{PREFIX}/app{app}/count/",
        f"{PREFIX}/role/{case.own.role}/range/download",
        f"{PREFIX}/app{app}/range/download",
    ]


def task_paths(case: Case) -> list[str]:
    task = case.own
    agent = f"/system/v1/agent/{task.agent_id}/logs"
    v1 = f"/framework/{MARATHON}/executor/{task.executor}/container/{task.container}"
    run = f"/v2/task/frameworks/{MARATHON}/executors/{task.executor}/runs/{task.container}"
    # The master's own v1 task routes read the master's journal (no reader in this cluster).
    return [
        f"{agent}/v1/range{v1}",
        f"{agent}/v1/range{v1}/download",
        f"{agent}/v1/stream{v1}",
        f"{agent}/v1/count{v1}",
        f"{agent}{run}/stdout",
        f"{agent}{run}/stdout?stream",
        f"/system/v1/logs/v2/task/{task.task_id}/file/stdout",
        f"/system/v1/logs/v2/task/{task.task_id}/file/stdout?stream",
        f"/system/v1/logs/v2/task/{task.task_id}/file/stdout/count",
    ]


@pytest.fixture(scope="module")
def run(env: Env) -> str:
    run = new_run()
    for _ in range(LINES):  # interleaved: a leak would sit between the own lines
        for case in CASES:
            env.write(case.foreign, run, 1)
            env.write(case.own, run, 1)
    env.sync()
    return run


def message(task: TaskDef, n: int) -> str:
    return f"{task.app} {task.name} line {n}"


def read(env: Env, path: str, case: Case, run: str) -> str:
    """The body (a stream's until every own line has come), as text."""
    path, _, mode = path.partition("?")
    streaming = mode == "stream" or "/stream" in path
    params: dict[str, object] = {
        "filter": [
            f"{RUN}:{run}",
            *(f"CONTAINER_ID:{t.container}" for t in (case.own, case.foreign)),
            *(f"EXECUTOR_ID:{t.executor}" for t in (case.own, case.foreign)),
        ]
    }
    if streaming:
        params["cursor" if "/v2/" in path else "skip_prev"] = "BEG" if "/v2/" in path else 1000
        return read_stream(env, path, case, params)
    r = env.get(path, env.users[case.uid], **params)
    assert r.status_code == 200, (path, r.status_code, r.text)
    body = r.content
    return (gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body).decode()


def read_stream(env: Env, path: str, case: Case, params: dict[str, object]) -> str:
    headers = {**env.users[case.uid], "Accept": "text/event-stream"}
    last = message(case.own, LINES - 1)
    text: list[str] = []
    seen_last = False
    with (
        httpx.Client(timeout=httpx.Timeout(30.0, read=DEADLINE)) as client,
        client.stream("GET", env.base + path, headers=headers, params=params) as r,  # type: ignore[arg-type]
    ):
        assert r.status_code == 200, (path, r.status_code, r.read())
        for line in r.iter_lines():
            text.append(line)
            if last in line:  # the own task's last line: a leak would have come before
                seen_last = True
                break
    assert seen_last, f"{path}: the stream ended before `{last}`"
    return "\n".join(text)


def check(body: str, case: Case, path: str) -> None:
    if "/count" in path:
        # A count leaks as a bigger number: the foreign task wrote as many lines.
        assert orjson.loads(body) == {"entries": LINES}, (path, body)
        return
    for n in range(LINES):
        assert message(case.own, n) in body, (path, n)
    assert case.foreign.name not in body, f"{path}: the foreign task's lines leaked"


MERGED = [(case, path) for case in CASES for path in merged_paths(case)]
TASK = [(case, path) for case in CASES for path in task_paths(case)]


def ids(pair: tuple[Case, str]) -> str:
    case, path = pair
    return f"{case}:{path.split('/logs', 1)[1]}"


@pytest.mark.parametrize("pair", MERGED, ids=ids)
def test_mixed_container_filter_on_merged_routes_returns_only_own_lines(
    env: Env, run: str, pair: tuple[Case, str]
) -> None:
    case, path = pair
    check(read(env, path, case, run), case, path)


@pytest.mark.parametrize("pair", TASK, ids=ids)
def test_mixed_container_filter_on_task_routes_returns_only_own_lines(
    env: Env, run: str, pair: tuple[Case, str]
) -> None:
    case, path = pair
    check(read(env, path, case, run), case, path)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_the_foreign_task_is_not_readable_alone(env: Env, run: str, case: Case) -> None:
    """The premise: the caller may not read the foreign task by its own routes."""
    foreign = case.foreign
    path = f"/system/v1/logs/v2/task/{foreign.task_id}/file/stdout"
    assert env.get(path, env.users[case.uid]).status_code == 403
