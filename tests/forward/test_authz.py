"""The gateway's authorization decides what flows: a service account granted `/dev`
forwarding the role `dev` ships /dev's lines and never /devops' or /prod's; revoking its
grant ends the pipeline with exit status 3."""

from __future__ import annotations

from pathlib import Path

from tests.forward.support import DEV, DEVOPS, RUN, WEB, Env, new_run, wait_for

DEV_GRANT = "dcos:mesos:agent:task:app_id:/dev"


def test_a_dev_account_ships_no_other_line_and_stops_when_revoked(env: Env, tmp_path: Path) -> None:
    key = env.service_account("forwarder-dev", DEV_GRANT)
    run = new_run()
    for task in (DEV, DEVOPS, WEB):
        env.write(task, run, 10)
    env.sync()
    out = tmp_path / "out.ndjson"
    args = ("role", "dev", "--to", f"file://{out}", "--state", str(tmp_path / "s.json"))
    args += ("--filter", f"{RUN}:{run}", "--service-account", "forwarder-dev")
    with env.forward(*args, "--private-key", str(key)) as fwd:
        wait_for("10 lines", lambda: _lines(out) >= 10 or None)
        env.write(DEV, run, 5)
        wait_for("15 lines", lambda: _lines(out) >= 15 or None)
        env.revoke(DEV_GRANT, "forwarder-dev")
        assert fwd.wait() == 3, fwd.output()
        assert "denied" in fwd.output()
    text = out.read_text()
    assert "/dev/worker" in text
    assert "/devops" not in text
    assert "/prod" not in text
    assert _lines(out) == 15


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0
