"""grep= through the gateway (issue 14): merged role reads search every agent's part and
never widen what the caller may read; task count routes are authorized as task routes."""

from __future__ import annotations

import re

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


def test_bad_patterns_and_context_are_400_on_merged_reads(env: Env) -> None:
    admin = env.admin
    r = env.get(f"{PREFIX}/role/dev/range/", admin, grep="(")
    assert r.status_code == 400
    assert "grep" in r.text
    r = env.get(f"{PREFIX}/role/dev/range/", admin, grep="x", context=1)
    assert r.status_code == 400
    assert "context" in r.text


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
