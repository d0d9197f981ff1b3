"""Merged ranges end to end: real node readers on four journald namespaces, the Mesos
simulator, a real gateway. The merged range is checked against a brute-force merge of each
agent's own journal, read from its node reader directly."""

from __future__ import annotations

import base64
import os
import signal
import time

import orjson
import pytest

from tests.merge.support import (
    AGENTS,
    DEV,
    DEVOPS,
    PREFIX,
    PRODUCTION,
    RUN,
    WEB,
    Env,
    TaskDef,
    new_run,
)

TASK_FIELDS = ("AGENT_ID", "FRAMEWORK_ID", "EXECUTOR_ID", "CONTAINER_ID")
JSON = {"Accept": "application/json"}


def brute_force(env: Env, tasks: tuple[TaskDef, ...], run: str) -> list[tuple[str, str]]:
    """(agent, cursor) in merged order: each agent's lines as its node reader serves them,
    then repeatedly the smallest head by (realtime_timestamp, agent id)."""
    per_agent: dict[str, list[dict[str, object]]] = {}
    for task in tasks:
        per_agent.setdefault(task.agent_id, []).extend(env.direct(task, run))
    for entries in per_agent.values():  # one agent's containers: back into journal order
        entries.sort(key=lambda e: int(str(e["cursor"]).split(";")[1][2:], 16))
    heads = dict.fromkeys(per_agent, 0)
    out: list[tuple[str, str]] = []
    while True:
        live = [
            (int(str(per_agent[a][i]["realtime_timestamp"])), a)
            for a, i in heads.items()
            if i < len(per_agent[a])
        ]
        if not live:
            return out
        _, agent = min(live)
        out.append((agent, str(per_agent[agent][heads[agent]]["cursor"])))
        heads[agent] += 1


def merged(env: Env, path: str, run: str, *filters: str, **params: object) -> list[dict]:  # type: ignore[type-arg]
    """A merged range of `run`'s lines as NDJSON entries, narrowed by more `filters`."""
    r = env.get(path, {**env.admin, **JSON}, filter=[f"{RUN}:{run}", *filters], **params)
    assert r.status_code == 200, (r.status_code, r.text)
    assert r.headers["content-type"] == "application/json"
    return [orjson.loads(line) for line in r.content.splitlines()]


def keys(entries: list[dict]) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [(e["fields"]["AGENT_ID"], e["cursor"]) for e in entries]


ROUNDS = 40
PER_TASK = sum(1 + n % 3 for n in range(ROUNDS))


def write_interleaved(env: Env, run: str, tasks: tuple[TaskDef, ...]) -> None:
    for n in range(ROUNDS):
        for task in tasks:
            env.write(task, run, 1 + (n % 3))
    env.sync()


@pytest.fixture(scope="module")
def prod_run(env: Env) -> str:
    """Lines of every task of the cluster, interleaved across the three agents."""
    run = new_run()
    write_interleaved(env, run, (*WEB, DEV, DEVOPS, PRODUCTION))
    return run


def test_app_range_is_the_brute_force_merge_of_every_agent(env: Env, prod_run: str) -> None:
    got = merged(env, f"{PREFIX}/app/prod/range/", prod_run)
    expected = brute_force(env, WEB, prod_run)
    assert len(expected) == 3 * PER_TASK
    assert keys(got) == expected
    assert {e["fields"]["AGENT_ID"] for e in got} == set(AGENTS[:3])
    for entry in got:  # every entry names its sources, and only /prod/web is in it
        assert all(entry["fields"][name] for name in TASK_FIELDS)
        assert entry["fields"]["CONTAINER_ID"] in {t.container for t in WEB}
    times = [e["realtime_timestamp"] for e in got]
    assert times == sorted(times)


def test_role_range_covers_the_roles_tasks_across_apps(env: Env, prod_run: str) -> None:
    got = merged(env, f"{PREFIX}/role/prod/range/", prod_run)
    assert keys(got) == brute_force(env, (*WEB, PRODUCTION), prod_run)
    dev = merged(env, f"{PREFIX}/role/dev/range/", prod_run)
    assert keys(dev) == brute_force(env, (DEV, DEVOPS), prod_run)


def test_app_ids_cover_descendants_on_slash_boundaries(env: Env, prod_run: str) -> None:
    prod = merged(env, f"{PREFIX}/app/prod/range/", prod_run)
    assert all(e["fields"]["CONTAINER_ID"] != PRODUCTION.container for e in prod)
    web = merged(env, f"{PREFIX}/app/prod/web/range/", prod_run)
    assert keys(web) == keys(prod)
    production = merged(env, f"{PREFIX}/app/production/range/", prod_run)
    assert {e["fields"]["CONTAINER_ID"] for e in production} == {PRODUCTION.container}


def test_skip_prev_is_the_last_n_of_the_merged_whole(env: Env, prod_run: str) -> None:
    expected = brute_force(env, WEB, prod_run)
    r = env.get(
        f"{PREFIX}/app/prod/range/", {**env.admin, **JSON}, filter=f"{RUN}:{prod_run}", skip_prev=25
    )
    assert keys([orjson.loads(x) for x in r.content.splitlines()]) == expected[-25:]
    assert r.headers["x-journal-skip-prev"] == "25"
    last_five_of_them = merged(env, f"{PREFIX}/app/prod/range/", prod_run, skip_prev=25, limit=5)
    assert keys(last_five_of_them) == expected[-25:-20]
    assert keys(merged(env, f"{PREFIX}/app/prod/range/", prod_run, limit=7)) == expected[:7]
    assert keys(merged(env, f"{PREFIX}/app/prod/range/", prod_run, skip_next=200)) == expected[200:]


def test_text_and_event_stream_formats(env: Env, prod_run: str) -> None:
    expected = brute_force(env, WEB, prod_run)
    text = env.get(f"{PREFIX}/app/prod/range/", env.admin, filter=f"{RUN}:{prod_run}", limit=5)
    assert text.headers["content-type"].startswith("text/plain")
    lines = text.text.splitlines()
    assert len(lines) == 5
    assert all(" /prod/web web-" in line for line in lines)
    sse = env.get(
        f"{PREFIX}/app/prod/range/",
        {**env.admin, "Accept": "text/event-stream"},
        filter=f"{RUN}:{prod_run}",
        limit=4,
    )
    events = [e for e in sse.content.split(b"\n\n") if e]
    assert len(events) == 4
    last_id = events[-1].split(b"\n")[0].removeprefix(b"id: ").decode()
    # The last id names the position of every agent seen so far, and continues the range.
    decoded = orjson.loads(base64.urlsafe_b64decode(last_id[3:] + "=="))
    assert decoded["a"] == {a: c for a, c in expected[:4]}
    rest = merged(env, f"{PREFIX}/app/prod/range/", prod_run, cursor=last_id)
    assert keys(rest) == expected[4:]


def test_nothing_matching_is_204(env: Env) -> None:
    r = env.get(f"{PREFIX}/app/prod/range/", env.admin, filter=f"{RUN}:nothing-{new_run()}")
    assert r.status_code == 204
    assert r.content == b""


def test_a_frozen_reader_is_left_out_after_the_agent_timeout(env: Env, prod_run: str) -> None:
    # SIGSTOP: the reader's socket still accepts, nothing answers. Without a bound the whole
    # range waited for the upstream read timeout (60 s).
    frozen = env.readers[AGENTS[1]].proc
    assert frozen is not None
    os.kill(frozen.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        r = env.get(f"{PREFIX}/app/prod/range/", {**env.admin, **JSON}, filter=f"{RUN}:{prod_run}")
        elapsed = time.monotonic() - started
    finally:
        os.kill(frozen.pid, signal.SIGCONT)
    assert r.status_code == 200, r.text
    assert r.headers["X-Logway-Unavailable-Agents"] == AGENTS[1]
    assert elapsed < 20, f"the range waited {elapsed:.1f} s for the frozen agent"
    got = keys([orjson.loads(line) for line in r.content.splitlines()])
    assert got == brute_force(env, (WEB[0], WEB[2]), prod_run)


def test_filters_on_task_fields_only_narrow(env: Env, prod_run: str) -> None:
    # journald ORs values of one field: forwarded beside the caller's own /prod/web container
    # on S1, a CONTAINER_ID filter would add the /devops task's lines there (a foreign
    # container alone narrows the plan to nothing before anything is read, so it proves less).
    path = f"{PREFIX}/app/prod/range/"
    mixed = [f"CONTAINER_ID:{WEB[1].container}", f"CONTAINER_ID:{DEVOPS.container}"]
    r = env.get(path, {**env.users["prodrole"], **JSON}, filter=[f"{RUN}:{prod_run}", *mixed])
    assert r.status_code == 200, r.text
    got = [orjson.loads(line) for line in r.content.splitlines()]
    assert keys(got) == brute_force(env, (WEB[1],), prod_run)
    r = env.get(path, env.admin, filter=[f"{RUN}:{prod_run}", f"CONTAINER_ID:{DEVOPS.container}"])
    assert r.status_code == 204, r.text
    one = merged(env, path, prod_run, f"container_id:{WEB[1].container}")
    assert keys(one) == brute_force(env, (WEB[1],), prod_run)
    s0 = merged(env, path, prod_run, f"AGENT_ID:{AGENTS[0]}")
    assert keys(s0) == brute_force(env, (WEB[0],), prod_run)
    both = merged(
        env, path, prod_run, f"CONTAINER_ID:{WEB[0].container}", f"CONTAINER_ID:{WEB[2].container}"
    )
    assert keys(both) == brute_force(env, (WEB[0], WEB[2]), prod_run)
    # Other fields are forwarded and ANDed: every line here went to STDOUT.
    stderr = env.get(path, env.admin, filter=[f"{RUN}:{prod_run}", "STREAM:STDERR"])
    assert stderr.status_code == 204, stderr.text


@pytest.mark.parametrize(
    ("path", "params", "headers", "parameter"),
    [
        ("/app/prod/range/", {"cursor": "s=1;i=2;b=3;m=4;t=5;x=6"}, {}, "cursor"),
        ("/app/prod/range/", {"cursor": "m1.bm90IGpzb24"}, {}, "cursor"),
        ("/app/prod/stream/", {}, {"Last-Event-ID": "m1.garbage!"}, "Last-Event-ID"),
        ("/app/prod/range/", {"read_reverse": "true"}, {}, "read_reverse"),
        ("/app/prod/stream/", {"limit": "5"}, {}, "limit"),
        ("/app/prod/stream/", {"skip_next": "5"}, {}, "skip_next"),
        ("/app/prod/range/", {"skip_prev": "1000001"}, {}, "skip_prev"),
        ("/app/prod/range/", {"limit": "-1"}, {}, "limit"),
        ("/app/prod/range/", {"since": "yesterday"}, {}, "since"),
        ("/app/prod/range/", {"filter": "nocolon"}, {}, "filter"),
        ("/app/prod/range/", {"filter": "__CURSOR:x"}, {}, "filter"),
        ("/app/prod/stream/", {"filter": "__CURSOR:x"}, {}, "filter"),
        ("/app/Prod/range/", {}, {}, "app id"),
        ("/app/range/", {}, {}, "app id"),
    ],
)
def test_bad_input_is_400_naming_it(
    env: Env, path: str, params: dict[str, str], headers: dict[str, str], parameter: str
) -> None:
    r = env.get(PREFIX + path, {**env.admin, **headers}, **params)
    assert r.status_code == 400, (r.status_code, r.text)
    assert parameter in r.text
