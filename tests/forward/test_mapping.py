"""The pure parts: entry → record, the shared JSON event, RFC 5424 framing and escaping, the
Journal Export Format, OTLP's request, the configuration and the position file."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from app.cli.http import CliError
from app.forward import config, position
from app.forward.journal_remote import export
from app.forward.otlp import request
from app.forward.record import BadRecord, Record, realtime_of
from app.forward.rfc5424 import frame, message
from app.forward.sink import ConfigError, open_sink

CURSOR = "s=abc;i=1f;b=2e61;m=7b;t=661fef0da1a5a;x=9"
REALTIME = 0x661FEF0DA1A5A


def record(**fields: object) -> Record:
    data = orjson.dumps({"fields": fields, "cursor": CURSOR, "realtime_timestamp": REALTIME})
    return Record.parse(data, None)


def test_a_file_event_takes_its_cursor_and_time_from_the_event_id() -> None:
    r = Record.parse(b'{"fields":{"MESSAGE":"hi","CONTAINER_ID":"c"}}', CURSOR)
    assert r.cursor == CURSOR
    assert r.realtime == REALTIME == realtime_of(CURSOR)
    assert r.event()["container_id"] == "c"


@pytest.mark.parametrize("data", [b"nope", b"[]", b'{"fields":{}}', b'{"fields":"x"}'])
def test_what_is_not_an_entry_is_refused(data: bytes) -> None:
    with pytest.raises(BadRecord):
        Record.parse(data, None)


def test_the_event_maps_the_fields() -> None:
    r = record(
        MESSAGE="m",
        PRIORITY="3",
        _HOSTNAME="h",
        _SYSTEMD_UNIT="u.service",
        TASK_ID="t",
        STREAM="STDERR",
        DCOS_SPACE="/prod/web",
    )
    event = r.event()
    assert event["@timestamp"] == "2026-12-06T22:50:50.676826Z"
    assert (event["message"], event["severity"], event["priority"]) == ("m", "err", 3)
    assert (event["host"], event["service"]) == ("h", "u.service")
    assert (event["task_id"], event["stream"], event["app_id"]) == ("t", "STDERR", "/prod/web")
    assert event["cursor"] == CURSOR


def test_binary_values_are_kept_as_bytes() -> None:
    r = record(MESSAGE=[104, 255])
    assert r.raw("MESSAGE") == b"h\xff"
    assert r.message == "h\ufffd"


def test_rfc5424_escapes_structured_data_and_counts_octets() -> None:
    r = record(MESSAGE="é line", SYSLOG_IDENTIFIER="my app", TASK_ID='a"b]c\\d', _PID="42")
    msg = message(r)
    assert msg.startswith(b"<14>1 ")
    assert b" my_app 42 - [logway@32473 " in msg
    assert b'task_id="a\\"b\\]c\\\\d"' in msg
    assert msg.endswith("\ufeffé line".encode())
    framed = frame(r)
    length, _, rest = framed.partition(b" ")
    assert int(length) == len(rest) == len(msg)


def test_export_format_frames_newlines_and_binary() -> None:
    r = record(MESSAGE="two\nlines", BLOB=[0, 1, 255], PLAIN="x=y")
    out = export(r)
    assert out.startswith(b"__CURSOR=" + CURSOR.encode() + b"\n")
    assert b"__REALTIME_TIMESTAMP=%d\n" % REALTIME in out
    assert b"__MONOTONIC_TIMESTAMP=123\n" in out
    assert b"MESSAGE\n" + (9).to_bytes(8, "little") + b"two\nlines\n" in out
    assert b"BLOB\n" + (3).to_bytes(8, "little") + b"\x00\x01\xff\n" in out
    assert b"PLAIN=x=y\n" in out
    assert out.endswith(b"\n\n")


def test_otlp_groups_by_resource_and_maps_severity() -> None:
    body = request([record(MESSAGE="a", PRIORITY="4", _HOSTNAME="h", SYSLOG_IDENTIFIER="s")])
    (resource,) = body["resourceLogs"]
    keys = {a["key"] for a in resource["resource"]["attributes"]}
    assert keys == {"host.name", "service.name"}
    (log,) = resource["scopeLogs"][0]["logRecords"]
    assert (log["severityNumber"], log["severityText"]) == (13, "WARN")
    assert log["timeUnixNano"] == str(REALTIME * 1000)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://x", "unknown scheme"),
        ("redis://h:1/0", r"needs \?key"),
        ("redis://h:1/0?key=k&mode=pubsub", "mode"),
        ("syslog+tcp://h", "host:port"),
        ("file://relative/path", "absolute"),
        ("file:///x?max_bytes=0", "max_bytes"),
        ("syslog+tls://h:1?ca=/no/such/ca.pem", "not a file"),
    ],
)
def test_bad_sink_urls_are_usage_errors(url: str, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        open_sink(url)


def test_a_config_file_is_checked_before_anything_starts(tmp_path: Path) -> None:
    path = tmp_path / "f.toml"
    path.write_text('[[pipeline]]\nsource = "app /prod"\nto = ["file:///x"]\nstate = "s"\n')
    loaded = config.load(path)
    assert loaded.pipelines[0].words == ("app", "/prod")
    for text, words in [
        ('[[pipeline]]\nsource = "app"\nto = ["file:///x"]\nstate = "s"\n', "needs APP_ID"),
        ('[[pipeline]]\nsource = "app /p"\nstate = "s"\n', "at least one sink"),
        ('[[pipeline]]\nsource = "app /p"\nto = ["file:///x"]\n', "state file"),
        ('[[pipeline]]\nsource = "cluster x"\nto = ["file:///x"]\nstate = "s"\n', "no arguments"),
        ('bogus = 1\n[[pipeline]]\nsource = "master"\n', "unknown setting"),
        ("not toml [", "--config"),
    ]:
        path.write_text(text)
        with pytest.raises(CliError, match=words):
            config.load(path)


def test_a_position_file_of_another_source_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    assert position.load(path, source="app /prod") == {}
    position.save(path, source="app /prod", positions={"": "c1"})
    assert position.load(path, source="app /prod") == {"": "c1"}
    with pytest.raises(position.PositionError, match="give each pipeline its own"):
        position.load(path, source="role dev")
    assert not list(tmp_path.glob(".*.tmp"))  # replaced atomically, nothing left behind


@pytest.mark.parametrize("size", [1, 7, 64, 10_000])
def test_the_event_splitter_agrees_with_the_general_parser(size: int) -> None:
    from app.forward.sse import EventSplitter
    from app.proxy.sse import SseParser

    stream = (
        b': ping\n\nid: c1\ndata: {"a":1}\n\n: agent S1 unavailable\n\n'
        b'data: {"b":2}\n\nid: c3\ndata: x\ndata: y\n\nid: c4\ndata: {"c":3}\n\n'
        # The usual two-line event's edges: no data (the id still moves), an id with NUL
        # (ignored), a third line.
        b"id: c5\ndata: \n\nid: c\x006\ndata: n\n\nid: c7\ndata: d\nretry: 5\n\n"
        b"id: c8\ndata: last\n\n"
    )
    chunks = [stream[i : i + size] for i in range(0, len(stream), size)]
    fast, general = EventSplitter(), SseParser()
    got = [e for c in chunks for e in fast.feed(c)]
    want = [(e.id, e.data) for c in chunks for e in general.feed(c)]
    assert got == want
    assert got[1] == ("c1", b'{"b":2}')  # an event without an id keeps the last one
    assert fast.comments == ["agent S1 unavailable"]
    crlf = EventSplitter()  # a carriage return: the general parser takes over
    assert crlf.feed(b"id: a\r\ndata: z\r\n\r\n") == [("a", b"z")]


@pytest.mark.parametrize("crlf", [False, True])
def test_the_gateways_access_ended_event_is_no_entry(crlf: bool) -> None:
    from app.forward.sse import EventSplitter

    stream = b'id: c1\ndata: {"a":1}\n\nevent: access-ended\ndata: access revoked\n\n'
    if crlf:  # the general parser's path
        stream = stream.replace(b"\n", b"\r\n")
    splitter = EventSplitter()
    assert splitter.feed(stream) == [("c1", b'{"a":1}')]
    assert splitter.ended == "access revoked"
