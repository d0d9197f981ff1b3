"""RFC 5424 over TCP and over TLS (a test CA) into rsyslogd: every message parses as RFC 5424
with the structured data intact; the receiver stopped for 10 s and restarted loses nothing;
a receiver that closes on every message is reported as refusing."""

from __future__ import annotations

import re
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.forward.receivers import Rsyslog, make_tls
from tests.forward.support import RUN, SYSLOG_HOST, WEB, Env, new_run, wait_for

# RFC 5424 §6: HEADER SP STRUCTURED-DATA [SP MSG]
RFC5424 = re.compile(
    r"<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) "
    r"(?P<msgid>\S+) (?P<sd>\[logway@32473(?: [a-z_]+=\"(?:[^\"\\\]]|\\.)*\")*\]) "
    r"\ufeff?(?P<msg>.*)"
)
PARAM = re.compile(r'([a-z_]+)="((?:[^"\\\]]|\\.)*)"')


def parsed(line: str) -> dict[str, str]:
    match = RFC5424.fullmatch(line)
    assert match, line
    fields = match.groupdict()
    fields.update(PARAM.findall(match["sd"]))
    return fields


def _forward(env: Env, url: str, run: str, tmp: Path, *extra: str) -> object:
    return env.forward(
        "app",
        "/prod/web",
        "--to",
        url,
        "--state",
        str(tmp / "state.json"),
        "--filter",
        f"{RUN}:{run}",
        *extra,
    )


@pytest.mark.parametrize("tls", [False, True], ids=["tcp", "tls"])
def test_messages_parse_as_rfc5424_with_the_task_ids(env: Env, tmp_path: Path, tls: bool) -> None:
    certs = make_tls(tmp_path, SYSLOG_HOST) if tls else None
    receiver = Rsyslog(tmp_path / "rsyslog", SYSLOG_HOST, certs).start()
    try:
        run = new_run()
        env.write(WEB, run, 20)
        env.sync()
        url = f"syslog+tcp://{SYSLOG_HOST}:{receiver.port}"
        if certs is not None:
            url = f"syslog+tls://{SYSLOG_HOST}:{receiver.port}?ca={certs.ca}"
        with _forward(env, url, run, tmp_path) as fwd:  # type: ignore[attr-defined]
            wait_for("20 lines", lambda: len(receiver.lines()) >= 20 or None)
            assert fwd.terminate() == 0
        lines = [parsed(line) for line in receiver.lines()]
    finally:
        receiver.stop()
    assert [m["msg"] for m in lines] == [f"/prod/web web-0 line {n}" for n in range(20)]
    first = lines[0]
    assert first["pri"] == "14"  # user.info
    assert first["app"] == "web-0"
    assert first["msgid"] == "STDOUT"
    assert first["task_id"] == WEB.task_id
    assert first["agent_id"] == WEB.agent_id
    assert first["container_id"] == WEB.container
    assert first["cursor"].startswith("s=")


def test_a_tls_receiver_the_ca_does_not_vouch_for_is_refused(env: Env, tmp_path: Path) -> None:
    for name in ("real", "other"):
        (tmp_path / name).mkdir()
    certs = make_tls(tmp_path / "real", SYSLOG_HOST)
    other = make_tls(tmp_path / "other", SYSLOG_HOST)
    receiver = Rsyslog(tmp_path / "rsyslog", SYSLOG_HOST, certs).start()
    try:
        run = new_run()
        env.write(WEB, run, 1)
        env.sync()
        url = f"syslog+tls://{SYSLOG_HOST}:{receiver.port}?ca={other.ca}"
        with _forward(env, url, run, tmp_path) as fwd:  # type: ignore[attr-defined]
            assert fwd.wait() == 4
            assert "refused the batch" in fwd.output()
            assert "certificate" in fwd.output()
    finally:
        receiver.stop()


def test_the_receiver_stopped_for_10_s_loses_nothing(env: Env, tmp_path: Path) -> None:
    receiver = Rsyslog(tmp_path / "rsyslog", SYSLOG_HOST).start()
    run = new_run()
    url = f"syslog+tcp://{SYSLOG_HOST}:{receiver.port}"
    written = 0
    try:
        with _forward(env, url, run, tmp_path, "--batch", "50") as fwd:  # type: ignore[attr-defined]
            env.write(WEB, run, 200)
            written += 200
            wait_for("some lines", lambda: len(receiver.lines()) >= 100 or None)
            receiver.stop()  # while lines keep coming
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                env.write(WEB, run, 20)
                written += 20
                time.sleep(0.5)
            receiver.start()
            env.write(WEB, run, 100)
            written += 100
            wait_for(
                f"{written} distinct lines",
                lambda: len({parsed(x)["msg"] for x in receiver.lines()}) >= written or None,
            )
            assert fwd.terminate() == 0
            assert "retrying" in fwd.output()
    finally:
        receiver.stop()
    messages = {parsed(line)["msg"] for line in receiver.lines()}
    assert messages == {f"/prod/web web-0 line {n}" for n in range(written)}


def test_a_receiver_closing_on_every_message_is_reported(env: Env, tmp_path: Path) -> None:
    listener = socket.socket()
    listener.bind((SYSLOG_HOST, 0))
    listener.listen()
    stop = threading.Event()

    def refuse() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.recv(65536)
            conn.close()

    thread = threading.Thread(target=refuse)
    thread.start()
    try:
        run = new_run()
        env.write(WEB, run, 5)
        env.sync()
        url = f"syslog+tcp://{SYSLOG_HOST}:{listener.getsockname()[1]}"
        with _forward(env, url, run, tmp_path) as fwd:  # type: ignore[attr-defined]
            assert fwd.wait(120) == 4, fwd.output()
            assert "refuses what is sent" in fwd.output()
    finally:
        stop.set()
        thread.join()
        listener.close()
