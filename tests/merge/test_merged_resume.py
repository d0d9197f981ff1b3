"""Exact resume when a task starts on an agent that is already in the merged stream.

The composite cursor records, per agent, which containers its place covers and what is still
owed behind it (`app.merge.cursor`). These tests start a second /prod/web task on S0
(where /prod/web already runs) at the awkward moments — unnoticed by the stream before the
client leaves, noticed just before, and while its catch-up is being delivered — and check
that every line of every task since the stream's origin arrives exactly once over all
connections, against a brute-force read of each node's journal."""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Callable

import orjson
import pytest

from app.merge.cursor import decode_cursor, digest
from tests.merge.support import (
    AGENTS,
    PREFIX,
    RUN,
    SECOND_WEB,
    WEB,
    Env,
    Event,
    Stream,
    TaskDef,
    new_run,
    wait_for,
)

APP = f"{PREFIX}/app/prod/stream/"
TASKS = (*WEB, SECOND_WEB)
S0 = AGENTS[0]


def stream(
    env: Env,
    run: str,
    last_id: str | None = None,
    stop_when: Callable[[Event], bool] | None = None,
) -> Stream:
    headers = {**env.admin, **({"Last-Event-ID": last_id} if last_id else {})}
    s = Stream(env.base + APP, headers, stop_when, filter=f"{RUN}:{run}")
    assert s.status == 200
    return s


def journal(env: Env, run: str, tasks: tuple[TaskDef, ...]) -> set[tuple[str, int]]:
    """Brute force: every line of `run` in each task's node journal, read directly."""
    keys = set()
    for task in tasks:
        for entry in env.direct(task, run):
            fields = entry["fields"]
            assert isinstance(fields, dict)
            keys.add((str(fields["CONTAINER_ID"]), int(fields["SEQ"])))
    return keys


def exactly_once(events: list[Event], expected: set[tuple[str, int]]) -> None:
    keys = [e.key for e in events]
    repeated = [k for k, n in Counter(keys).items() if n > 1]
    assert not repeated, f"{len(repeated)} lines repeated, e.g. {sorted(repeated)[:3]}"
    missing = expected - set(keys)
    assert not missing, f"{len(missing)} lines missing, e.g. {sorted(missing)[:3]}"
    assert set(keys) == expected, f"extra {set(keys) - expected}"
    for container in {c for c, _ in expected}:  # each task's lines in the order written
        seqs = [n for c, n in keys if c == container]
        assert seqs == sorted(seqs), container


def until_all(env: Env, s: Stream, before: list[Event], run: str) -> None:
    env.sync()
    expected = journal(env, run, TASKS)
    assert len(expected) == sum(env.written(t, run) for t in TASKS)
    try:
        s.wait(
            f"all {len(expected)} lines",
            lambda s: len({e.key for e in before + s.events}) >= len(expected),
        )
    finally:  # on a timeout too: say which lines are missing or repeated
        exactly_once(before + s.events, expected)


def of(task: TaskDef, events: list[Event]) -> list[Event]:
    return [e for e in events if e.fields["CONTAINER_ID"] == task.container]


def known(env: Env, task: TaskDef, probe: str) -> bool:
    """Does the gateway's cluster state hold `task` (its probe line is read through it)?"""
    r = env.get(
        f"{PREFIX}/app/prod/range/",
        {**env.admin, "Accept": "application/json"},
        filter=[f"CONTAINER_ID:{task.container}", f"{RUN}:{probe}"],
    )
    assert r.status_code in (200, 204), r.text
    return r.status_code == 200


@pytest.fixture
def second_web(env: Env):  # type: ignore[no-untyped-def]
    """SECOND_WEB, not in the gateway's cluster state when the test starts (other tests add
    it too), added by the test; whatever happens, it leaves the cluster after."""
    probe = new_run()
    env.write(SECOND_WEB, probe)
    env.sync()
    env.sim.remove_task(SECOND_WEB.task_id)
    wait_for("the gateway to forget the task", lambda: not known(env, SECOND_WEB, probe) or None)
    yield SECOND_WEB
    env.sim.remove_task(SECOND_WEB.task_id)
    wait_for("the gateway to forget the task", lambda: not known(env, SECOND_WEB, probe) or None)


def test_a_task_started_but_unnoticed_when_the_client_left_is_caught_up_on_resume(
    env: Env, second_web: TaskDef
) -> None:
    run = new_run()
    with stream(env, run) as first:
        for task in WEB:
            env.write(task, run, 3)
        first.count(9)
        # The new task writes before the gateway knows it; S0's place moves past its lines.
        env.write(second_web, run, 5)
        env.write(WEB[0], run, 3)
        env.sync()
        first.count(12)
        seen = list(first.events)
    assert of(second_web, seen) == []
    state = decode_cursor(seen[-1].id).state(S0)
    assert state is not None
    assert state.members == {digest(WEB[0].container)}
    # The task shows up in the cluster state only now, after the client left.
    env.sim.add_task(second_web.sim())
    for task in TASKS:
        env.write(task, run, 2)
    probe = new_run()
    env.write(second_web, probe)
    env.sync()
    wait_for("the gateway to know the task", lambda: known(env, second_web, probe) or None)
    with stream(env, run, seen[-1].id) as resumed:  # its plan holds the task from the start
        until_all(env, resumed, seen, run)
        assert [e.key[1] for e in of(second_web, resumed.events)] == list(range(7))


def test_a_task_noticed_just_before_the_client_leaves(env: Env, second_web: TaskDef) -> None:
    run = new_run()
    with stream(env, run) as first:
        for task in WEB:
            env.write(task, run, 3)
        first.count(9)
        env.write(second_web, run, 4)
        env.write(WEB[0], run, 2)
        env.sync()
        first.count(11)
        env.sim.add_task(second_web.sim())
        env.write(second_web, run, 3)  # after the task started: the gateway may know it or not
        env.write(WEB[0], run, 1)
        env.sync()
        first.count(12)  # and leave at once, wherever its catch-up stands
        seen = list(first.events)
    for task in TASKS:
        env.write(task, run, 2)
    with stream(env, run, seen[-1].id) as resumed:
        until_all(env, resumed, seen, run)


@pytest.mark.parametrize("leave_at", ["first", "last"])
def test_the_client_leaves_while_or_right_after_the_catch_up_is_delivered(
    env: Env, second_web: TaskDef, leave_at: str
) -> None:
    run = new_run()
    early = 1500  # lines of the new task before the stream knows it: a long catch-up
    with stream(env, run) as first:
        for task in WEB:
            env.write(task, run, 2)
        first.count(6)
        env.write(second_web, run, early)
        env.write(WEB[0], run, 2)
        env.sync()
        first.count(8)
        seen = list(first.events)
    # Follow on from there, leaving at the first (or last) caught-up line of the new task:
    # the new task's lines are all behind S0's place, so only its catch-up brings them.
    target = 0 if leave_at == "first" else early - 1

    def at_target(e: Event) -> bool:
        return e.key == (second_web.container, target)

    with stream(env, run, seen[-1].id, stop_when=at_target) as second:
        env.sim.add_task(second_web.sim())
        second.wait("the client to leave at its line", lambda s: s.stopped.is_set())
        assert second.events
        assert at_target(second.events[-1])
        seen += second.events
    caught_up = [e.key[1] for e in of(second_web, seen)]
    assert caught_up == list(range(target + 1))  # in order, and nothing after the target
    last = decode_cursor(seen[-1].id)
    s0 = last.state(S0)
    assert s0 is not None
    if leave_at == "first":  # the catch-up is owed from the line the client saw
        assert [(d.start is not None, d.members) for d in s0.debts] == [
            (True, frozenset({digest(second_web.container)}))
        ]
    else:  # paid off: the new task is covered
        assert s0.debts == ()
        assert s0.members == {digest(WEB[0].container), digest(second_web.container)}
    for task in TASKS:
        env.write(task, run, 2)
    with stream(env, run, seen[-1].id) as resumed:
        until_all(env, resumed, seen, run)


def _as_m1(composite: str) -> str:
    text = composite[3:]
    body = orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    old = {"o": body["o"], "a": body["a"]}
    return "m1." + base64.urlsafe_b64encode(orjson.dumps(old)).rstrip(b"=").decode()


def test_an_m1_cursor_still_resumes_every_agent_exactly(env: Env) -> None:
    run = new_run()
    with stream(env, run) as first:
        for task in WEB:
            env.write(task, run, 4)
        first.count(12)
        seen = list(first.events)
    old = _as_m1(seen[-1].id)
    assert decode_cursor(old).positions == decode_cursor(seen[-1].id).positions
    for task in WEB:
        env.write(task, run, 3)
    env.sync()
    expected = journal(env, run, WEB)
    with stream(env, run, old) as resumed:
        resumed.wait(
            f"all {len(expected)} lines",
            lambda s: len({e.key for e in seen + s.events}) >= len(expected),
        )
        exactly_once(seen + resumed.events, expected)
        assert resumed.events[0].id.startswith("m2.")  # ids of the current format onwards
    r = env.get(APP, {**env.admin, "Last-Event-ID": "m1.not-json"})
    assert r.status_code == 400
    assert "Last-Event-ID" in r.text
