"""A pipeline from an app of the cluster into Redis, as Logstash's `redis` input reads it:
every line, in order, fields mapped; streams with XADD; and `kill -9` three times during
100,000 entries loses nothing and repeats at most one batch per kill."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import redis

from tests.forward.receivers import redis_server
from tests.forward.support import DEV, REDIS_HOST, RUN, WEB, Env, new_run, wait_for


@pytest.fixture(scope="module")
def redis_port() -> Iterator[int]:
    with redis_server(REDIS_HOST) as port:
        yield port


@pytest.fixture
def db(redis_port: int) -> Iterator[redis.Redis]:
    client = redis.Redis(host=REDIS_HOST, port=redis_port)
    yield client
    client.close()


def test_every_line_of_an_app_arrives_in_order_as_logstash_json_events(
    env: Env, redis_port: int, db: redis.Redis, tmp_path: Path
) -> None:
    run = new_run()
    env.write(WEB, run, 50)
    env.write(DEV, run, 5)  # another app on the same agent: not forwarded
    env.sync()
    url = f"redis://{REDIS_HOST}:{redis_port}/0?key={run}"
    state = tmp_path / "state.json"
    with env.forward(
        "app", "/prod", "--to", url, "--state", str(state), "--filter", f"{RUN}:{run}"
    ) as fwd:
        wait_for("50 entries in redis", lambda: db.llen(run) >= 50 or None)
        env.write(WEB, run, 50)  # followed: new lines arrive too
        wait_for("100 entries in redis", lambda: db.llen(run) >= 100 or None)
        assert fwd.terminate() == 0, fwd.output()
    events = [orjson.loads(raw) for raw in db.lrange(run, 0, -1)]
    assert [e["fields"]["SEQ"] for e in events] == [str(n) for n in range(100)]
    first = events[0]
    assert first["message"] == "/prod/web web-0 line 0"
    assert first["@version"] == "1"
    assert first["@timestamp"].endswith("Z")
    assert first["service"] == "web-0"
    assert first["severity"] == "info"
    assert first["agent_id"] == WEB.agent_id
    assert first["task_id"] == WEB.task_id
    assert first["container_id"] == WEB.container
    assert first["stream"] == "STDOUT"
    assert first["cursor"].startswith("s=")
    assert first["host"]
    saved = orjson.loads(state.read_bytes())
    assert saved["source"] == f"app /prod, filter {RUN}:{run}"
    assert saved["positions"][""]  # the merged stream's composite cursor


def test_a_restart_resumes_after_the_saved_position(
    env: Env, redis_port: int, db: redis.Redis, tmp_path: Path
) -> None:
    run = new_run()
    env.write(WEB, run, 20)
    env.sync()
    url = f"redis://{REDIS_HOST}:{redis_port}/0?key={run}&mode=stream"
    args = ("agent", WEB.agent_id, "--to", url, "--state", str(tmp_path / "s.json"))
    args += ("--filter", f"{RUN}:{run}")
    t0 = time.monotonic()
    with env.forward(*args) as fwd:
        wait_for("20 stream entries", lambda: db.xlen(run) >= 20 or None)
        t1 = time.monotonic()
        assert fwd.terminate() == 0
        print("TIMING", t1 - t0, time.monotonic() - t1)
    env.write(WEB, run, 10)
    env.sync()
    with env.forward(*args) as fwd:
        wait_for("30 stream entries", lambda: db.xlen(run) >= 30 or None)
        assert fwd.terminate() == 0
    entries = db.xrange(run)
    seqs = [orjson.loads(fields[b"event"])["fields"]["SEQ"] for _, fields in entries]
    assert seqs == [str(n) for n in range(30)]
    assert entries[0][1][b"message"] == b"/prod/web web-0 line 0"


ENTRIES = 100_000
KILLS = 3
BATCH = 1000


def test_kill_9_three_times_loses_nothing(
    env: Env, redis_port: int, db: redis.Redis, tmp_path: Path
) -> None:
    run = new_run()
    url = f"redis://{REDIS_HOST}:{redis_port}/0?key={run}"
    state = tmp_path / "state.json"
    args = ("app", "/prod/web", "--to", url, "--state", str(state))
    args += ("--filter", f"{RUN}:{run}", "--batch", str(BATCH))
    # The entries are written while the forwarder follows them and is killed.
    writer = threading.Thread(target=env.write, args=(WEB, run, ENTRIES))
    writer.start()
    rng = random.Random()
    try:
        for kill in range(KILLS):
            low = ENTRIES * kill // KILLS + 1
            target = rng.randrange(low, ENTRIES * (kill + 1) // KILLS)
            with env.forward(*args) as fwd:
                wait_for(f"{target} entries", lambda t=target: db.llen(run) >= t or None)
                fwd.kill()
    finally:
        writer.join()
    with env.forward(*args) as fwd:
        wait_for(f"all {ENTRIES}", lambda: _complete(db, run), timeout=120)
        assert fwd.terminate() == 0
    seqs = [orjson.loads(raw)["fields"]["SEQ"] for raw in db.lrange(run, 0, -1)]
    assert set(seqs) == {str(n) for n in range(ENTRIES)}  # 0 missing
    duplicates = len(seqs) - ENTRIES
    assert duplicates <= KILLS * BATCH, duplicates
    print(f"{duplicates} duplicates after {KILLS} kills (batch {BATCH})")


def _complete(db: redis.Redis, key: str) -> bool | None:
    if db.llen(key) < ENTRIES:
        return None
    time.sleep(0.5)  # then only when something is missing: parsing 100,000 events is slow
    seqs = {orjson.loads(raw)["fields"]["SEQ"] for raw in db.lrange(key, 0, -1)}
    return len(seqs) >= ENTRIES or None
