"""Merged streams end to end: follow, resume by the composite cursor after the client
leaves, after a node reader dies and comes back, after a task starts on a new agent; caps.

Every line carries (CONTAINER_ID, SEQ); "exactly once" means every written key arrives and
none twice over all connections of a test, each task's lines in the order written."""

from __future__ import annotations

import functools
import re
from collections import Counter

import httpx
import orjson

from app.devcluster.mesos import SimAgent
from tests.gateway.support import node_headers
from tests.merge.support import (
    AGENTS,
    CAPPED_ENV,
    CAPPED_HOST,
    DEV,
    HOSTS,
    LATE_WEB,
    PREFIX,
    RUN,
    SECOND_WEB,
    WEB,
    Env,
    Event,
    Stream,
    TaskDef,
    Writer,
    new_run,
    wait_for,
)

APP = f"{PREFIX}/app/prod/stream/"


def stream(env: Env, run: str, headers: dict[str, str] | None = None, **params: object) -> Stream:
    s = Stream(env.base + APP, {**env.admin, **(headers or {})}, filter=f"{RUN}:{run}", **params)
    assert s.status == 200
    return s


def written(env: Env, run: str, tasks: tuple[TaskDef, ...]) -> set[tuple[str, int]]:
    return {(t.container, n) for t in tasks for n in range(env.written(t, run))}


def exactly_once(events: list[Event], expected: set[tuple[str, int]]) -> None:
    keys = [e.key for e in events]
    repeated = [k for k, n in Counter(keys).items() if n > 1]
    assert not repeated, f"{len(repeated)} lines repeated, e.g. {repeated[:3]}"
    assert set(keys) == expected, (
        f"missing {len(expected - set(keys))}, extra {set(keys) - expected}"
    )
    for container in {c for c, _ in expected}:  # each task's lines in the order written
        seqs = [n for c, n in keys if c == container]
        assert seqs == sorted(seqs), container


def until_all(
    env: Env, s: Stream, before: list[Event], run: str, tasks: tuple[TaskDef, ...]
) -> None:
    env.sync()
    expected = written(env, run, tasks)
    try:
        s.wait(
            f"all {len(expected)} lines",
            lambda s: len({e.key for e in before + s.events}) >= len(expected),
        )
    finally:  # on a timeout too: say which lines are missing or repeated
        exactly_once(before + s.events, expected)


def test_follows_and_resumes_exactly_after_the_client_leaves(env: Env) -> None:
    run = new_run()
    for task in WEB:
        env.write(task, run, 10)
    env.sync()
    with Writer(env, WEB, run) as writer:
        first = stream(env, run)
        first.count(30)
        wait_for("lines while connected", lambda: writer.more_than(60))
        first.count(40)
        first.close()
        seen = list(first.events)
        gone = writer.total()
        wait_for("lines while disconnected", lambda: writer.more_than(gone + 60))
        second = stream(env, run, {"Last-Event-ID": seen[-1].id}, skip_prev=5)
        second.count(1)
    until_all(env, second, seen, run, WEB)
    second.close()
    assert {e.fields["AGENT_ID"] for e in seen + second.events} == set(AGENTS[:3])
    # The same resume through `cursor=`.
    third = stream(env, run, cursor=seen[-1].id)
    until_all(env, third, seen, run, WEB)
    third.close()


def test_skip_prev_starts_with_the_last_n_of_the_merged_whole(env: Env) -> None:
    run = new_run()
    for _ in range(4):
        for task in WEB:
            env.write(task, run, 3)
    env.sync()
    r = env.get(
        f"{PREFIX}/app/prod/range/",
        {**env.admin, "Accept": "application/json"},
        filter=f"{RUN}:{run}",
        skip_prev=10,
    )
    last_ten = _keys(r.content)
    assert len(last_ten) == 10
    with stream(env, run, skip_prev=10) as s:
        s.count(10)
        assert [e.key for e in s.events[:10]] == last_ten
        env.write(WEB[1], run, 2)
        s.count(12)
        assert [e.key for e in s.events[10:]] == [(WEB[1].container, 12), (WEB[1].container, 13)]


def _keys(ndjson: bytes) -> list[tuple[str, int]]:
    out = []
    for line in ndjson.splitlines():
        fields = orjson.loads(line)["fields"]
        out.append((fields["CONTAINER_ID"], int(fields["SEQ"])))
    return out


def test_a_reader_that_dies_is_named_the_others_flow_and_it_resumes_exactly(env: Env) -> None:
    run = new_run()
    victim = AGENTS[1]
    reader = env.readers[victim]
    with stream(env, run) as s:
        with Writer(env, WEB, run) as writer:
            s.count(30)
            reader.kill()
            s.wait(
                "the outage comment",
                lambda s: any(f"agent {victim} unavailable" in c for c in s.comments),
            )
            others = len([e for e in s.events if e.fields["AGENT_ID"] != victim])
            s.wait(
                "the other agents while it is down",
                lambda s: (
                    len([e for e in s.events if e.fields["AGENT_ID"] != victim]) > others + 60
                ),
            )
            reader.start()  # same address, same journal
            s.wait(
                "its return",
                lambda s: any(f"agent {victim} available again" in c for c in s.comments),
            )
            back = writer.total()
            wait_for("lines after its return", lambda: writer.more_than(back + 60))
        until_all(env, s, [], run, WEB)


def test_a_task_on_a_new_agent_joins_live_and_after_a_resume(env: Env) -> None:
    run = new_run()
    tasks = (*WEB, LATE_WEB)
    try:
        with stream(env, run) as s:
            env.write(WEB[0], run, 3)
            s.count(3)
            env.sim.add_agent(SimAgent(AGENTS[3], HOSTS[3]))
            env.sim.add_task(LATE_WEB.sim())
            env.write(LATE_WEB, run, 5)  # before the gateway knows: delivered from the origin
            s.wait(
                "the new agent's lines",
                lambda s: sum(e.fields["AGENT_ID"] == AGENTS[3] for e in s.events) == 5,
            )
            assert any(f"agent {AGENTS[3]} joined" in c for c in s.comments)
            seen = list(s.events)
        for task in tasks:
            env.write(task, run, 4)
        with stream(env, run, {"Last-Event-ID": seen[-1].id}) as resumed:
            until_all(env, resumed, seen, run, tasks)
    finally:
        env.sim.remove_task(LATE_WEB.task_id)
        env.sim.remove_agent(AGENTS[3])


def test_a_task_starting_on_an_agent_already_streaming_brings_its_earlier_lines(
    env: Env,
) -> None:
    run = new_run()
    tasks = (*WEB, SECOND_WEB)
    try:
        with stream(env, run) as s:
            env.write(WEB[0], run, 3)
            s.count(3)
            # Lines before the gateway knows the task: behind S0's place when it joins.
            env.write(SECOND_WEB, run, 4)
            env.write(WEB[0], run, 3)
            s.count(6)
            env.sim.add_task(SECOND_WEB.sim())
            s.wait(
                "the new task's lines",
                lambda s: (
                    sum(e.fields["CONTAINER_ID"] == SECOND_WEB.container for e in s.events) == 4
                ),
            )
            env.write(SECOND_WEB, run, 2)
            env.write(WEB[1], run, 2)
            until_all(env, s, [], run, tasks)
            seen = list(s.events)
        for task in tasks:
            env.write(task, run, 3)
        with stream(env, run, {"Last-Event-ID": seen[-1].id}) as resumed:
            until_all(env, resumed, seen, run, tasks)
    finally:
        env.sim.remove_task(SECOND_WEB.task_id)


def test_an_agent_added_while_the_client_was_away_is_read_from_the_streams_start(env: Env) -> None:
    run = new_run()
    tasks = (*WEB, LATE_WEB)
    try:
        with stream(env, run) as s:
            for task in WEB:
                env.write(task, run, 3)
            s.count(9)
            seen = list(s.events)
        env.sim.add_agent(SimAgent(AGENTS[3], HOSTS[3]))
        env.sim.add_task(LATE_WEB.sim())
        env.write(LATE_WEB, run, 7)
        env.write(WEB[2], run, 2)
        with stream(env, run, {"Last-Event-ID": seen[-1].id}) as resumed:
            until_all(env, resumed, seen, run, tasks)
            assert sum(e.fields["AGENT_ID"] == AGENTS[3] for e in resumed.events) == 7
    finally:
        env.sim.remove_task(LATE_WEB.task_id)
        env.sim.remove_agent(AGENTS[3])


def test_an_agent_that_leaves_is_dropped(env: Env) -> None:
    run = new_run()
    with stream(env, run) as s:
        env.write(WEB[2], run, 2)
        s.count(2)
        env.sim.remove_agent(AGENTS[2])
        try:
            s.wait(
                "the agent dropped",
                lambda s: any(f"agent {AGENTS[2]} left" in c for c in s.comments),
            )
            env.write(WEB[2], run, 2)
            env.write(WEB[0], run, 1)
            s.count(3)
            assert [e.key for e in s.events] == [
                (WEB[2].container, 0),
                (WEB[2].container, 1),
                (WEB[0].container, 0),
            ]
        finally:
            env.sim.add_agent(SimAgent(AGENTS[2], HOSTS[2]))
        # Back in the cluster: it rejoins from where it left, so nothing is lost.
        s.wait(
            "the agent back", lambda s: any(f"agent {AGENTS[2]} joined" in c for c in s.comments)
        )
        s.count(5)
        assert [e.key for e in s.events[3:]] == [(WEB[2].container, 2), (WEB[2].container, 3)]


def test_caps_are_429_with_retry_after_naming_the_limit(env: Env) -> None:
    with env.gateway(CAPPED_ENV, CAPPED_HOST) as capped:
        wait_for(
            "the capped gateway's cluster state",
            lambda: (
                httpx.get(
                    f"{capped}{PREFIX}/app/dev/range/", headers=env.admin, timeout=10
                ).status_code
                in (200, 204)
                or None
            ),
        )
        r = httpx.get(f"{capped}{PREFIX}/app/prod/range/", headers=env.admin, timeout=10)
        assert r.status_code == 429
        assert r.headers["retry-after"] == "60"
        assert "3 agents" in r.text
        assert "merge_max_agents" in r.text
        one = Stream(f"{capped}{PREFIX}/app/dev/stream/", env.admin)
        assert one.status == 200
        try:
            r = httpx.get(f"{capped}{PREFIX}/role/dev/stream/", headers=env.admin, timeout=10)
            assert r.status_code == 429
            assert r.headers["retry-after"] == "5"
            assert "merge_max_streams_per_identity=1" in r.text
            other = Stream(
                f"{capped}{PREFIX}/app/dev/stream/", env.users["dev"]
            )  # another identity
            assert other.status == 200
            other.close()
        finally:
            one.close()

        def again() -> bool | None:
            s = Stream(f"{capped}{PREFIX}/app/dev/stream/", env.admin)
            s.close()
            return s.status == 200 or None

        wait_for("the stream count to drop when the client left", again)


def test_metrics_count_merged_streams_and_entries(env: Env) -> None:
    run = new_run()

    def metric(name: str) -> int:
        text = httpx.get(f"{env.base}/metrics", headers=env.admin, timeout=10).text
        found = re.search(rf"^logway_proxy_{name} (\d+)$", text, re.M)
        assert found, text
        return int(found.group(1))

    entries = metric("merged_entries_total")
    with stream(env, run) as s:
        env.write(DEV, run, 1)  # not in /prod
        env.write(WEB[0], run, 4)
        s.count(4)
        assert metric("merged_active_streams") >= 1
        assert metric("merged_entries_total") >= entries + 4


def test_a_client_leaving_closes_every_upstream(env: Env) -> None:
    run = new_run()

    def followers(agent: str) -> int:
        url = env.readers[agent].url
        headers = node_headers(env.tmp / "gateway", url)
        text = httpx.get(f"{url}/metrics", headers=headers, timeout=10).text
        found = re.search(r"^logway_node_followers (\d+)$", text, re.M)
        assert found, text
        return int(found.group(1))

    with stream(env, run) as s:
        for task in WEB:
            env.write(task, run, 1)
        s.count(3)
        assert all(followers(agent) >= 1 for agent in AGENTS[:3])

    def closed(agent: str) -> bool | None:
        return followers(agent) == 0 or None

    for agent in AGENTS[:3]:
        wait_for(f"{agent}'s follow closed", functools.partial(closed, agent))
