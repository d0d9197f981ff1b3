"""`include=scheduler`: which of Marathon's lines name an app (issue 18), and how the
scheduler's source is read from a node reader (its unit's v2 component route)."""

from __future__ import annotations

import orjson
import pytest

from app.merge.entry import LineParser, MergedEntry
from app.merge.fanin import (
    SCHEDULER_SOURCE,
    SCHEDULER_TAIL_FACTOR,
    Requester,
    SourceOpener,
    SourceSpec,
    Start,
    names_any,
)

CURSOR = "s=a;i=1;b=b;m=1;t=5f0a1b2c3d4e5;x=1"


def entry(message: object, agent: str = SCHEDULER_SOURCE) -> MergedEntry:
    line = orjson.dumps({"fields": {"MESSAGE": message, "UNIT": "dcos-marathon.service"}})
    return MergedEntry(agent, CURSOR, line[:-1] + b',"cursor":"' + CURSOR.encode() + b'"}')


@pytest.mark.parametrize(
    ("names", "message", "kept"),
    [
        (("/prod",), "health check of /prod passed", True),
        (("/prod",), "health check of /prod/web passed", True),  # a descendant
        (("/prod",), "deployment of /prod: done", True),
        (("/prod",), "scaling (/prod)", True),
        (("/prod",), "/prod", True),
        (("/prod",), "health check of /production passed", False),
        (("/prod",), "health check of /prod.v2 passed", False),
        (("/prod",), "health check of /prod-x passed", False),
        (("/prod",), "health check of /dev/prod passed", False),  # not the id, a segment
        (("/prod",), "offer declined: nothing to launch", False),
        (("/prod/web",), "health check of /prod passed", False),  # the parent is not it
        (("/dev/worker", "/dev/batch"), "launching /dev/batch instance", True),
        (("/dev/worker", "/dev/batch"), "launching /prod/web instance", False),
        (("/a.b",), "launching /aXb", False),  # escaped: `.` is no wildcard
        ((), "health check of /prod passed", False),
    ],
)
def test_lines_naming_an_app(names: tuple[str, ...], message: str, kept: bool) -> None:
    assert names_any(names)(entry(message)) is kept


def test_binary_messages_and_entries_without_one() -> None:
    keep = names_any(("/prod",))
    assert keep(entry(list(b"check of /prod \xff")))
    assert not keep(entry(None))


def test_scheduler_entries_get_no_agent_id() -> None:
    line = orjson.dumps({"fields": {"MESSAGE": "x"}, "cursor": CURSOR})
    (parsed,) = LineParser(SCHEDULER_SOURCE).feed(line + b"\n")
    assert b"AGENT_ID" not in parsed.data
    (agent,) = LineParser("S0").feed(line + b"\n")
    assert b'"AGENT_ID":"S0"' in agent.data


def opener() -> SourceOpener:
    return SourceOpener(
        upstream=None, requester=Requester("u", None, "http", lambda: "t", (("STREAM", "STDOUT"),))
    )  # type: ignore[arg-type]


def test_the_scheduler_is_read_through_its_units_component_route() -> None:
    spec = SourceSpec(
        SCHEDULER_SOURCE, "http://m:1", (), unit="dcos-marathon.service", names=("/p",)
    )
    call = opener().call(spec, Start(since=7), stream=True)
    assert call.path == "/v2/component/dcos-marathon.service"
    assert call.query == b"filter=STREAM%3ASTDOUT&since=7"
    tail = opener().call(spec, Start(), stream=False, skip_prev=10)
    assert tail.path == "/v2/component/dcos-marathon.service"
    assert tail.query.endswith(f"&skip=-{10 * SCHEDULER_TAIL_FACTOR}".encode())
    agent = SourceSpec("S0", "http://a:1", ("c1",))
    assert opener().call(agent, Start(), stream=False, skip_prev=10).path == "/v1/range/"
