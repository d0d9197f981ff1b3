"""`logway logs`'s pure parts: arguments → routes and parameters, the SSE parser, the output
formats, and the follow loop's reconnects over a scripted transport. End to end against a
real cluster: tests/cli/test_logs_cli.py."""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from app.cli.credentials import Credentials
from app.cli.http import EXIT_DENIED, EXIT_ERROR, EXIT_USAGE, CliError
from app.cli.logs import Plan, plan
from app.cli.logs_output import (
    BOLD,
    DIM,
    RED,
    TASK_COLOURS,
    YELLOW,
    BadEntry,
    JsonFormatter,
    LogEntry,
    Printer,
    RawFormatter,
    Style,
    TextFormatter,
)
from app.cli.logs_read import (
    BACKOFF_FIRST,
    BACKOFF_MAX,
    Target,
    check,
    follow,
    last_cursor,
    ndjson,
)
from app.cli.logs_source import (
    DEFAULT_LINES,
    Request,
    SourceArgs,
    V1Route,
    V2Route,
    Window,
    kind_named,
    parse_filter,
    parse_lines,
    parse_since,
    unit_name,
)
from app.cli.main import build_parser, main

# --- Arguments ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "lines"), [("0", 0), ("7", 7), ("all", None), ("100000", 100000)])
def test_lines(raw: str, lines: int | None) -> None:
    assert parse_lines(raw) == lines


@pytest.mark.parametrize("raw", ["-1", "ten", "", "1.5", "ALL"])
def test_bad_lines_are_usage_errors(raw: str) -> None:
    with pytest.raises(CliError) as err:
        parse_lines(raw)
    assert err.value.code == EXIT_USAGE
    assert "--lines" in str(err.value)


NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("raw", "ago"),
    [("30s", 30), ("10m", 600), ("2h", 7200), ("1d", 86400), ("1w", 604800), ("1h30m", 5400)],
)
def test_since_a_time_ago(raw: str, ago: int) -> None:
    assert parse_since(raw, now=NOW) == int((NOW - ago) * 1_000_000)


@pytest.mark.parametrize(
    ("raw", "usec"),
    [
        ("2027-01-15T08:00:00Z", 1_800_000_000_000_000),
        ("2027-01-15T08:00:00+01:00", 1_799_996_400_000_000),
        ("2027-01-15T08:00:00.5z", 1_800_000_000_500_000),
        ("2027-01-15T08:00:00.123457Z", 1_800_000_000_123_457),  # exact to the µs
    ],
)
def test_since_rfc3339_with_a_zone(raw: str, usec: int) -> None:
    assert parse_since(raw) == usec


def test_since_without_a_zone_is_local_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")  # UTC+9, no daylight saving
    time.tzset()
    try:
        assert parse_since("2027-01-15T17:00:00") == 1_800_000_000_000_000
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize("raw", ["yesterday", "10", "10x", "-5m", "2027-13-01", ""])
def test_bad_since_is_a_usage_error(raw: str) -> None:
    with pytest.raises(CliError) as err:
        parse_since(raw)
    assert err.value.code == EXIT_USAGE
    assert "--since" in str(err.value)


@pytest.mark.parametrize(
    ("raw", "pair"),
    [
        ("STREAM:STDERR", ("STREAM", "STDERR")),
        ("stream:STDERR", ("STREAM", "STDERR")),  # the node reader upper-cases names too
        ("_SYSTEMD_UNIT:a.service", ("_SYSTEMD_UNIT", "a.service")),
        ("URL:http://x:1/", ("URL", "http://x:1/")),  # the value may hold ':'
        ("MESSAGE:", ("MESSAGE", "")),
    ],
)
def test_filter(raw: str, pair: tuple[str, str]) -> None:
    assert parse_filter(raw) == pair


@pytest.mark.parametrize("raw", ["STREAM", ":x", "1ABC:x", "A B:x", "A-B:x", "É:x"])
def test_bad_filter_is_a_usage_error(raw: str) -> None:
    with pytest.raises(CliError) as err:
        parse_filter(raw)
    assert err.value.code == EXIT_USAGE


@pytest.mark.parametrize(
    ("raw", "unit"),
    [
        ("dcos-mesos-master", "dcos-mesos-master.service"),
        ("dcos-mesos-master.service", "dcos-mesos-master.service"),
        ("dcos-log.socket", "dcos-log.socket"),
        ("systemd-journald@x", "systemd-journald@x.service"),
        ("foo.bar", "foo.bar.service"),
    ],
)
def test_unit_names_get_service_unless_they_have_a_type(raw: str, unit: str) -> None:
    assert unit_name(raw) == unit


# --- Routes ------------------------------------------------------------------------------------


def build(kind: str, unit: str | None = None, **values: str):  # type: ignore[no-untyped-def]
    return kind_named(kind).build(SourceArgs(values, unit))


def test_v1_route_parameters() -> None:
    route = V1Route("/system/v1/logs/v1")
    window = Window(lines=5, since=123, filters=(("STREAM", "STDERR"), ("A", "b")))
    assert route.range(window).path == "/system/v1/logs/v1/range/"
    assert route.stream(window).path == "/system/v1/logs/v1/stream/"
    assert route.range(window).params == (
        ("skip_prev", "5"),
        ("since", "123"),
        ("filter", "STREAM:STDERR"),
        ("filter", "A:b"),
    )
    # No count: from `since` or the head; 0 sends no skip_prev (a stream would start at the
    # head with skip_prev=0 anyway, and the cursor says where).
    assert route.stream(Window(lines=None)).params == ()
    assert route.stream(Window(lines=0, cursor="s=1")).params == (("cursor", "s=1"),)


def test_v2_route_parameters() -> None:
    route = V2Route("/system/v1/logs/v2/component/x.service")
    window = Window(lines=3, filters=(("STREAM", "STDOUT"),))
    assert route.range(window) == route.stream(window)  # Accept decides
    assert route.range(window).params == (("skip", "-3"), ("filter", "STREAM:STDOUT"))
    assert route.range(Window(lines=None, since=9)).params == (("since", "9"),)


@pytest.mark.parametrize(
    ("kind", "values", "unit", "range_path", "label"),
    [
        ("master", {}, None, "/system/v1/logs/v1/range/", "master"),
        ("leader", {}, None, "/system/v1/leader/mesos/logs/v1/range/", "leader"),
        ("agent", {"agent_id": "a-S0"}, None, "/system/v1/agent/a-S0/logs/v1/range/", "agent a-S0"),
        (
            "agent",
            {"agent_id": "x/../y"},  # one path segment, whatever it holds
            None,
            "/system/v1/agent/x%2F..%2Fy/logs/v1/range/",
            "agent x/../y",
        ),
        (
            "master",
            {},
            "u.service",
            "/system/v1/logs/v2/component/u.service",
            "master, unit u.service",
        ),
        (
            "leader",
            {},
            "u.service",
            "/system/v1/leader/mesos/logs/v2/component/u.service",
            "leader, unit u.service",
        ),
        (
            "agent",
            {"agent_id": "a-S1"},
            "u@1.service",
            "/system/v1/agent/a-S1/logs/v2/component/u%401.service",
            "agent a-S1, unit u@1.service",
        ),
        (
            "task",
            {"task": "web.prod", "file": "stderr"},
            None,
            "/system/v1/logs/v2/task/web.prod/file/stderr",
            "task web.prod stderr",
        ),
        ("role", {"role": "prod"}, None, "/system/v1/logs/v1/role/prod/range/", "role prod"),
        ("role", {"role": "a/b"}, None, "/system/v1/logs/v1/role/a%2Fb/range/", "role a/b"),
        (
            "app",
            {"app_id": "/prod/web"},
            None,
            "/system/v1/logs/v1/app/prod/web/range/",
            "app /prod/web",
        ),
        (
            "app",
            {"app_id": "prod/web/"},
            None,
            "/system/v1/logs/v1/app/prod/web/range/",
            "app /prod/web",
        ),
        ("app", {"app_id": "/a b"}, None, "/system/v1/logs/v1/app/a%20b/range/", "app /a b"),
        (
            "task",
            {"task": "a b/c", "file": "stdout"},
            None,
            "/system/v1/logs/v2/task/a%20b%2Fc/file/stdout",
            "task a b/c stdout",
        ),
    ],
)
def test_sources(
    kind: str, values: dict[str, str], unit: str | None, range_path: str, label: str
) -> None:
    source = build(kind, unit, **values)
    assert source.route.range(Window()).path == range_path
    assert source.label == label
    assert (source.task_file is not None) == (kind == "task")


@pytest.mark.parametrize(
    "values", [{"task": "t", "file": "stdout"}, {"role": "prod"}, {"app_id": "/prod"}]
)
def test_only_nodes_have_units(values: dict[str, str]) -> None:
    kind = {"task": "task", "role": "role", "app_id": "app"}[next(iter(values))]
    with pytest.raises(CliError) as err:
        build(kind, "u.service", **values)
    assert err.value.code == EXIT_USAGE
    assert "--unit" in str(err.value)


def test_merged_streams_follow_on_from_a_v1_stream_url() -> None:
    route = build("role", role="prod").route
    assert route.stream(Window(lines=0, cursor="m1.x")) == Request(
        "/system/v1/logs/v1/role/prod/stream/", (("cursor", "m1.x"),)
    )


def test_a_task_header_names_the_task_and_agent_of_its_first_line() -> None:
    source = build("task", task="web.prod", file="stdout")
    assert source.header(None) == "==> task web.prod stdout <=="
    first = {"TASK_ID": "prod_web.1", "AGENT_ID": "m-S0", "MESSAGE": "x"}
    assert source.header(first) == "==> task web.prod stdout (prod_web.1) on agent m-S0 <=="
    # The task's own id is not repeated; a followed task's events have no TASK_ID.
    by_id = build("task", task="prod_web.1", file="stdout")
    assert by_id.header(first) == "==> task prod_web.1 stdout on agent m-S0 <=="
    assert source.header({"AGENT_ID": "m-S1"}) == "==> task web.prod stdout on agent m-S1 <=="
    assert build("master").header(first) == "==> master <=="


# --- Output ------------------------------------------------------------------------------------


def entry(**fields: object) -> LogEntry:
    obj = {"fields": fields, "cursor": "c", "realtime_timestamp": 1_800_000_000_250_000}
    return LogEntry.parse(orjson.dumps(obj))


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


NODE_LINE = entry(
    MESSAGE="allocation done",
    _HOSTNAME="m1",
    SYSLOG_IDENTIFIER="mesos-master",
    _PID="42",
    PRIORITY="6",
)


@pytest.mark.usefixtures("utc")
def test_text_is_journalctl_short() -> None:
    plain = TextFormatter(Style())
    assert plain.format(NODE_LINE) == b"Jan 15 08:00:00 m1 mesos-master[42]: allocation done\n"
    no_pid = entry(MESSAGE="m", _HOSTNAME="h", _COMM="sshd")
    assert plain.format(no_pid) == b"Jan 15 08:00:00 h sshd: m\n"
    assert plain.format(entry(MESSAGE="bare")) == b"Jan 15 08:00:00 bare\n"
    assert plain.format(entry(_HOSTNAME="h")) is None  # no MESSAGE, no line


@pytest.mark.usefixtures("utc")
def test_text_colours_on_a_terminal() -> None:
    tty = Style.for_terminal("text", True, {"TERM": "xterm"})
    coloured = TextFormatter(tty).format(NODE_LINE)
    assert coloured == (
        f"{DIM}Jan 15 08:00:00\x1b[0m m1 mesos-master[42]: allocation done\n".encode()
    )
    error = TextFormatter(tty).format(entry(MESSAGE="boom", PRIORITY="3"))
    assert error is not None
    assert f"{RED}boom\x1b[0m".encode() in error
    warning = TextFormatter(tty).format(entry(MESSAGE="hm", PRIORITY="4"))
    assert warning is not None
    assert f"{YELLOW}hm\x1b[0m".encode() in warning
    task_stderr = TextFormatter(tty, task_file="stderr").format(entry(MESSAGE="oops"))
    assert task_stderr == f"{RED}oops\x1b[0m\n".encode()
    node_stderr = TextFormatter(tty).format(entry(MESSAGE="oops", STREAM="STDERR"))
    assert node_stderr is not None
    assert RED.encode() in node_stderr


@pytest.mark.usefixtures("utc")
def test_a_merged_read_prefixes_each_task_in_its_own_colour_on_a_terminal() -> None:
    web0 = {"SYSLOG_IDENTIFIER": "web.prod", "CONTAINER_ID": "2056a8a1-15c2"}
    web1 = {"SYSLOG_IDENTIFIER": "web.prod", "CONTAINER_ID": "d3660689-cb5b"}
    pod = {"SYSLOG_IDENTIFIER": "loader", "CONTAINER_ID": "475e8cb3.77c1132c-485a"}
    tty = TextFormatter(Style.for_terminal("text", True, {}), per_task=True)
    lines = [tty.format(entry(MESSAGE=m, **f)) for m, f in [("a", web0), ("b", web1), ("c", web0)]]
    green, blue = TASK_COLOURS[:2]
    stamp = f"{DIM}Jan 15 08:00:00\x1b[0m"
    assert lines[0] == f"{green}web.prod:2056a8\x1b[0m {stamp} web.prod: a\n".encode()
    assert lines[1] == f"{blue}web.prod:d36606\x1b[0m {stamp} web.prod: b\n".encode()
    assert lines[2] is not None
    assert lines[2].startswith(f"{green}web.prod:2056a8".encode())  # the same task, same colour
    nested = tty.format(entry(MESSAGE="d", **pod))
    assert nested is not None
    assert nested.startswith(f"{TASK_COLOURS[2]}loader:77c113".encode())  # the child container
    no_colour = TextFormatter(Style.for_terminal("text", True, {"NO_COLOR": "1"}), per_task=True)
    plain = no_colour.format(entry(MESSAGE="a", **web0))
    assert plain == b"web.prod:2056a8 Jan 15 08:00:00 web.prod: a\n"
    piped = TextFormatter(Style(), per_task=True)
    assert piped.format(entry(MESSAGE="a", **web0)) == b"Jan 15 08:00:00 web.prod: a\n"


def test_a_task_text_line_is_what_the_task_wrote() -> None:
    formatter = TextFormatter(Style(), task_file="stdout")
    assert formatter.format(entry(MESSAGE="hello", _HOSTNAME="h")) == b"hello\n"
    binary = entry(MESSAGE=[0x68, 0x69, 0xFF])  # not UTF-8: a list of byte values
    assert formatter.format(binary) == "hi\ufffd\n".encode()
    assert RawFormatter().format(binary) == b"hi\xff\n"


def test_control_characters_are_escaped_on_a_terminal_only() -> None:
    nasty = entry(MESSAGE="a\x1b]0;pwned\x07b\tc\x9bd")
    tty = TextFormatter(Style(escape=True), task_file="stdout").format(nasty)
    assert tty == b"a\\x1b]0;pwned\\x07b\tc\\x9bd\n"
    piped = TextFormatter(Style(), task_file="stdout").format(nasty)
    assert piped == "a\x1b]0;pwned\x07b\tc\x9bd\n".encode()


@pytest.mark.parametrize(
    ("output", "isatty", "env", "style"),
    [
        ("text", True, {"TERM": "xterm"}, Style(colour=True, header=True, escape=True)),
        ("text", True, {"NO_COLOR": "1"}, Style(colour=False, header=True, escape=True)),
        ("text", True, {"NO_COLOR": ""}, Style(colour=True, header=True, escape=True)),
        ("text", True, {"TERM": "dumb"}, Style(colour=False, header=True, escape=True)),
        ("text", False, {}, Style()),
        ("json", True, {}, Style()),
        ("raw", True, {}, Style()),
    ],
)
def test_style(output: str, isatty: bool, env: dict[str, str], style: Style) -> None:
    assert Style.for_terminal(output, isatty, env) == style


def test_json_is_the_gateways_bytes() -> None:
    raw = b'{"fields":{"MESSAGE":"x","B":"\\u003c"},"cursor":"c"}'
    assert JsonFormatter().format(LogEntry.parse(raw)) == raw + b"\n"


@pytest.mark.parametrize("raw", [b"not json", b"[1]", b'{"fields":3}', b'{"cursor":"c"}'])
def test_not_an_entry(raw: bytes) -> None:
    with pytest.raises(ValueError, match="not"):
        LogEntry.parse(raw)


def printer(style: Style) -> tuple[Printer, io.BytesIO]:
    out = io.BytesIO()
    source = build("task", task="t", file="stdout")
    return Printer(out, TextFormatter(style, task_file="stdout"), style, source.header), out


def test_the_header_comes_once_before_the_first_line() -> None:
    p, out = printer(Style(header=True))
    p.entries([orjson.dumps({"fields": {"MESSAGE": "a", "AGENT_ID": "S0"}})])
    p.entries([orjson.dumps({"fields": {"MESSAGE": "b", "AGENT_ID": "S1"}})])
    p.finish()
    assert out.getvalue() == b"==> task t stdout on agent S0 <==\na\nb\n"


def test_an_empty_range_still_has_its_header_on_a_terminal() -> None:
    p, out = printer(Style(header=True, colour=True))
    p.finish()
    assert out.getvalue() == f"{BOLD}==> task t stdout <==\x1b[0m\n".encode()
    piped, piped_out = printer(Style())
    piped.finish()
    assert piped_out.getvalue() == b""


def test_ndjson_lines_across_chunks() -> None:
    chunks = iter([b'{"a":1}\n{"a"', b":2}\n\n", b'{"a":3}'])
    assert list(ndjson(chunks)) == [[b'{"a":1}'], [b'{"a":2}'], [b'{"a":3}']]


# --- Target ------------------------------------------------------------------------------------

STORED = Credentials(url="http://gw:8000/", uid="u", token="stored")


@pytest.mark.parametrize(
    ("url", "env", "stored", "target"),
    [
        (None, {}, STORED, Target("http://gw:8000", "stored")),
        ("http://gw:8000", {}, STORED, Target("http://gw:8000", "stored")),
        # The stored token is the stored URL's only.
        ("http://other:8000", {}, STORED, Target("http://other:8000", None)),
        (None, {"LOGWAY_URL": "http://other"}, STORED, Target("http://other", None)),
        ("http://a", {"LOGWAY_URL": "http://b"}, None, Target("http://a", None)),
        (None, {"LOGWAY_TOKEN": "env"}, STORED, Target("http://gw:8000", "env")),
        (
            None,
            {"LOGWAY_URL": "https://x/", "LOGWAY_TOKEN": "env"},
            None,
            Target("https://x", "env"),
        ),
        (
            None,
            {"LOGWAY_URL": "http://gw:8000", "LOGWAY_TOKEN": ""},
            STORED,
            Target("http://gw:8000", "stored"),
        ),
    ],
)
def test_target(
    url: str | None, env: dict[str, str], stored: Credentials | None, target: Target
) -> None:
    assert Target.resolve(url, env, stored) == target


@pytest.mark.parametrize(
    ("url", "env"), [(None, {}), ("gw:8000", {}), (None, {"LOGWAY_URL": "ftp://x"})]
)
def test_no_usable_url_is_a_usage_error(url: str | None, env: dict[str, str]) -> None:
    with pytest.raises(CliError) as err:
        Target.resolve(url, env, None)
    assert err.value.code == EXIT_USAGE


# --- Statuses ----------------------------------------------------------------------------------


def answer(status: int, body: str, *, token: bool = True) -> httpx.Response:
    headers = {"Authorization": "token=t"} if token else {}
    request = httpx.Request("GET", "http://gw/x", headers=headers)
    return httpx.Response(status, text=body, request=request)


@pytest.mark.parametrize(
    ("status", "body", "code", "says"),
    [
        (401, "Authentication required\n", EXIT_DENIED, "not authenticated (401)"),
        (403, "`u` lacks the permission\n", EXIT_DENIED, "denied (403): `u` lacks the permission"),
        (404, "task `x` not found\n", EXIT_ERROR, "not found (404): task `x` not found"),
        (400, "Incorrect filter\n", EXIT_USAGE, "bad request (400): Incorrect filter"),
        (503, "cluster state not loaded\n", EXIT_ERROR, "503: cluster state not loaded"),
        (500, "", EXIT_ERROR, "500: Internal Server Error"),
    ],
)
def test_error_statuses(status: int, body: str, code: int, says: str) -> None:
    with pytest.raises(CliError) as err:
        check(answer(status, body))
    assert err.value.code == code
    assert says in str(err.value)


def test_401_without_a_token_says_how_to_get_one() -> None:
    with pytest.raises(CliError, match="LOGWAY_TOKEN"):
        check(answer(401, "Authentication required", token=False))
    with pytest.raises(CliError) as err:
        check(answer(401, "Token expired"))
    assert "LOGWAY_TOKEN" not in str(err.value)


def test_an_ambiguous_task_lists_the_candidates_one_a_line() -> None:
    body = "found more than 1 task matching `web`: a.1, a.2 and 3 more\n"
    with pytest.raises(CliError) as err:
        check(answer(409, body))
    assert str(err.value) == (
        "found more than 1 task matching `web` (409); name one by its id:\n  a.1\n  a.2 and 3 more"
    )


# --- Follow ------------------------------------------------------------------------------------


class Cut(httpx.SyncByteStream):
    """Some bytes, then the connection fails the way `error` says."""

    def __init__(self, data: bytes, error: Exception | None) -> None:
        self._data, self._error = data, error

    def __iter__(self) -> Iterator[bytes]:
        yield self._data
        if self._error is not None:
            raise self._error


def event(cursor: str, message: str) -> bytes:
    data = orjson.dumps({"fields": {"MESSAGE": message}})
    return b"id: " + cursor.encode() + b"\ndata: " + data + b"\n\n"


Script = list[Callable[[httpx.Request], httpx.Response]]


def sse(data: bytes, error: Exception | None = None) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _: httpx.Response(
        200, headers={"content-type": "text/event-stream"}, stream=Cut(data, error)
    )


def status(code: int, body: str = "") -> Callable[[httpx.Request], httpx.Response]:
    return lambda _: httpx.Response(code, text=body)


def refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("[Errno 111] Connection refused", request=request)


class Done(Exception):
    pass


def run_follow(
    script: Script, *, stop_after: int, window: Window | None = None
) -> tuple[list[str], list[httpx.Request], list[str], list[float]]:
    """Follow `build('master')` over the scripted answers until `stop_after` messages."""
    requests: list[httpx.Request] = []
    answers = iter(script)

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return next(answers)(request)

    messages: list[str] = []

    def entries(raws: list[bytes]) -> None:
        for raw in raws:
            messages.append(orjson.loads(raw)["fields"]["MESSAGE"])
        if len(messages) >= stop_after:
            raise Done

    notes: list[str] = []
    sleeps: list[float] = []
    client = httpx.Client(base_url="http://gw", transport=httpx.MockTransport(handler))
    with pytest.raises(Done):
        follow(
            client,
            build("master"),
            window or Window(lines=2),
            entries,
            note=notes.append,
            sleep=sleeps.append,
        )
    return messages, requests, notes, sleeps


def test_follow_resumes_after_the_last_whole_event() -> None:
    script: Script = [
        # Two events, then half of a third and a reset.
        sse(
            event("c1", "one") + event("c2", "two") + b'id: c3\ndata: {"fi',
            httpx.ReadError("reset"),
        ),
        refused,
        status(503, "node reader unreachable"),
        # The gateway ends the stream (an upstream gone for good, a token's deadline).
        sse(event("c3", "three")),
        sse(b": ping\n\n", httpx.RemoteProtocolError("incomplete chunked read")),
        sse(event("c4", "four")),
    ]
    messages, requests, notes, sleeps = run_follow(script, stop_after=4)
    assert messages == ["one", "two", "three", "four"]
    resumed = [r.headers.get("last-event-id") for r in requests]
    assert resumed == [None, "c2", "c2", "c2", "c3", "c3"]
    first = requests[0]
    assert first.url.path == "/system/v1/logs/v1/stream/"
    assert first.url.params.get("skip_prev") == "2"
    assert first.headers["accept"] == "text/event-stream"
    # Every reconnect asks the same URL; Last-Event-ID overrides its skip on the node.
    assert {str(r.url) for r in requests} == {str(first.url)}
    assert notes == [
        "connection lost (reset); reconnecting in 0.5 s",
        "cannot connect ([Errno 111] Connection refused); reconnecting in 1 s",
        "the gateway answered 503: node reader unreachable; reconnecting in 2 s",
        "reconnected",
        "the gateway ended the stream; reconnecting in 0.5 s",
        "reconnected",
        "the connection closed mid-response; reconnecting in 1 s",
        "reconnected",
    ]
    assert sleeps == [BACKOFF_FIRST, 1, 2, BACKOFF_FIRST, 1]


def test_follow_shows_the_gateways_comments() -> None:
    script: Script = [sse(b": ping\n\n: agent S1 unavailable\n\n" + event("c1", "one"))]
    _, _, notes, _ = run_follow(script, stop_after=1)
    assert notes == ["agent S1 unavailable"]


def test_follow_backoff_is_bounded() -> None:
    script: Script = [sse(event("c1", "one"), httpx.ReadError("reset"))]
    script += [refused] * 8
    script += [sse(event("c2", "two"))]
    _, _, _, sleeps = run_follow(script, stop_after=2)
    assert sleeps == [0.5, 1, 2, 4, 8, BACKOFF_MAX, BACKOFF_MAX, BACKOFF_MAX, BACKOFF_MAX]


def test_follow_first_failure_is_an_error_not_a_retry() -> None:
    client = httpx.Client(base_url="http://gw", transport=httpx.MockTransport(refused))
    with pytest.raises(httpx.ConnectError):
        follow(client, build("master"), Window(), lambda _: None, note=print, sleep=print)
    denied = httpx.Client(
        base_url="http://gw", transport=httpx.MockTransport(status(503, "not loaded"))
    )
    with pytest.raises(CliError, match="503: not loaded"):
        follow(denied, build("master"), Window(), lambda _: None, note=print, sleep=print)


def test_follow_stops_on_an_answer_waiting_cannot_fix() -> None:
    script: Script = [
        sse(event("c1", "one"), httpx.ReadError("reset")),
        status(401, "token expired"),
    ]
    requests: list[httpx.Request] = []
    answers = iter(script)

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return next(answers)(request)

    client = httpx.Client(base_url="http://gw", transport=httpx.MockTransport(handler))
    with pytest.raises(CliError) as err:
        follow(
            client,
            build("master"),
            Window(),
            lambda _: None,
            note=lambda _: None,
            sleep=lambda _: None,
        )
    assert err.value.code == EXIT_DENIED
    assert len(requests) == 2


def test_follow_ends_when_the_gateway_says_access_ended() -> None:
    """The gateway's last event names why the caller's access ended: print the entries before
    it, then stop with that reason and exit 3, without reconnecting."""
    script: Script = [sse(event("c1", "one") + b"event: access-ended\ndata: access revoked\n\n")]
    requests: list[httpx.Request] = []
    answers = iter(script)

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return next(answers)(request)

    printed: list[bytes] = []
    notes: list[str] = []
    client = httpx.Client(base_url="http://gw", transport=httpx.MockTransport(handler))
    with pytest.raises(CliError, match="the gateway ended the stream: access revoked") as err:
        follow(
            client,
            build("master"),
            Window(),
            printed.extend,
            note=notes.append,
            sleep=lambda _: None,
        )
    assert err.value.code == EXIT_DENIED
    assert [orjson.loads(raw)["fields"]["MESSAGE"] for raw in printed] == ["one"]
    assert len(requests) == 1
    assert notes == []


# --- The command line --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["logs"],
        ["logs", "bogus"],
        ["logs", "agent"],
        ["logs", "task"],
        ["logs", "task", "t", "stdlog"],
        ["logs", "master", "-o", "xml"],
        ["logs", "master", "-n", "-3"],
        ["logs", "master", "--since", "soon"],
        ["logs", "master", "--filter", "NOCOLON"],
        ["logs", "task", "t", "--unit", "x"],
        ["logs", "master", "--unit", "a/b"],
        ["logs", "master", "--url", "gw:1"],
    ],
)
def test_bad_usage_exits_2(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setenv("LOGWAY_URL", "http://127.0.0.1:9")
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code  # type: ignore[assignment]
    assert code == EXIT_USAGE


def planned(*argv: str) -> Plan:
    return plan(build_parser().parse_args(["logs", *argv]), {"LOGWAY_URL": "http://gw"})


@pytest.fixture
def no_login(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))


@pytest.mark.usefixtures("no_login")
def test_defaults() -> None:
    p = planned("master")
    assert (p.window, p.follow, p.output) == (Window(lines=DEFAULT_LINES), False, "text")
    assert p.target == Target("http://gw", None)
    # --since alone: every line since then; with -n, the last N of those.
    assert planned("master", "--since", "2027-01-15T08:00:00Z").window.lines is None
    assert planned("master", "--since", "1h", "-n", "5").window.lines == 5


@pytest.mark.usefixtures("no_login")
def test_options_go_before_or_after_the_source() -> None:
    p = planned(
        "-f", "--filter", "A:1", "-o", "json", "task", "web", "stderr", "--filter", "b:2", "-n", "3"
    )
    assert p.follow
    assert p.output == "json"
    assert p.window == Window(lines=3, filters=(("A", "1"), ("B", "2")))
    assert p.source.label == "task web stderr"
    assert planned("-o", "json", "master", "-o", "raw").output == "raw"  # the later one
    assert planned("--unit", "x", "leader").source.label == "leader, unit x.service"
    assert planned("leader", "--url", "http://a").target == Target("http://a", None)


# --- Where `-n 0 --follow` starts ---------------------------------------------------------------


def newest(
    kind: str, answer: Callable[[httpx.Request], httpx.Response], **values: str
) -> tuple[str | None, httpx.Request]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(request)

    client = httpx.Client(base_url="http://gw", transport=httpx.MockTransport(handler))
    cursor = last_cursor(client, build(kind, **values), Window(lines=0, filters=(("A", "1"),)))
    return cursor, seen[0]


def body(media: str, data: bytes) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _: httpx.Response(200, headers={"content-type": media}, content=data)


def test_a_node_follows_on_from_its_newest_entrys_cursor() -> None:
    entry = b'data: {"fields":{"MESSAGE":"m"},"cursor":"s=1;i=2"}\n\n'
    cursor, request = newest("master", body("text/event-stream", entry))
    assert cursor == "s=1;i=2"
    assert request.url.path == "/system/v1/logs/v1/range/"
    assert request.url.params.multi_items() == [("skip_prev", "1"), ("filter", "A:1")]
    assert request.headers["accept"] == "text/event-stream"  # a range: no follow on v1


def test_a_merged_read_follows_on_from_the_composite_id() -> None:
    event = b'id: m1.abc\ndata: {"fields":{"MESSAGE":"m"},"cursor":"s=1;i=2"}\n\n'
    cursor, _ = newest("app", body("text/event-stream", event), app_id="/prod")
    assert cursor == "m1.abc"


def test_a_v2_source_follows_on_from_its_json_cursor() -> None:
    ndjson_body = b'{"fields":{},"cursor":"s=0"}\n{"fields":{},"cursor":"s=9"}\n'
    cursor, request = newest("task", body("application/json", ndjson_body), task="t", file="stdout")
    assert cursor == "s=9"
    assert request.headers["accept"] == "application/json"  # SSE would follow on v2
    assert request.url.params.get("skip") == "-1"


def test_nothing_yet_means_from_the_start_and_errors_are_errors() -> None:
    assert newest("master", lambda _: httpx.Response(204))[0] is None
    with pytest.raises(BadEntry):
        newest("master", body("text/event-stream", b'data: {"fields":{}}\n\n'))
    with pytest.raises(CliError) as err:
        newest("master", status(403, "no"))
    assert err.value.code == EXIT_DENIED


def test_with_scheduler_asks_a_merged_read_to_include_marathons_lines() -> None:
    for kind, values in (("role", {"role": "prod"}), ("app", {"app_id": "/prod"})):
        source = kind_named(kind).build(SourceArgs(values, with_scheduler=True))
        assert ("include", "scheduler") in source.route.range(Window(lines=3)).params
        assert ("include", "scheduler") in source.route.stream(Window(lines=0)).params
        assert source.label.endswith("with Marathon's lines")
        plain = kind_named(kind).build(SourceArgs(values))
        assert all(name != "include" for name, _ in plain.route.range(Window()).params)


@pytest.mark.parametrize(
    ("kind", "values"),
    [
        ("master", {}),
        ("leader", {}),
        ("agent", {"agent_id": "S0"}),
        ("task", {"task": "t", "file": "stdout"}),
    ],
)
def test_with_scheduler_only_for_merged_reads(kind: str, values: dict[str, str]) -> None:
    with pytest.raises(CliError) as err:
        kind_named(kind).build(SourceArgs(values, with_scheduler=True))
    assert err.value.code == EXIT_USAGE
    assert "--with-scheduler" in str(err.value)


def test_grep_matches_are_highlighted_and_groups_separated() -> None:
    from app.cli.logs_output import MATCH, RESET, LogEntry, Style, TextFormatter, highlighter

    paint = highlighter(("err(or)?", "(?i)disk"))
    fmt = TextFormatter(Style(colour=True), task_file="stdout", highlight=paint)
    match = LogEntry.parse(b'{"fields":{"MESSAGE":"error: Disk full"},"match":true,"gap":true}')
    context = LogEntry.parse(b'{"fields":{"MESSAGE":"error later"},"match":false}')
    assert fmt.format(match) == f"--\n{MATCH}error{RESET}: {MATCH}Disk{RESET} full\n".encode()
    assert fmt.format(context) == b"error later\n"
    plain = TextFormatter(Style(), task_file="stdout", highlight=paint)
    assert plain.format(match) == b"--\nerror: Disk full\n"
