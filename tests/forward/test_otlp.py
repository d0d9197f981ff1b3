"""OTLP/HTTP JSON, parsed by the receiver into the official `ExportLogsServiceRequest`
(opentelemetry-proto): severity from PRIORITY, host and service as resource attributes, the
task's ids and the cursor as log record attributes."""

from __future__ import annotations

from pathlib import Path

from tests.forward.receivers import OtlpServer
from tests.forward.support import OTLP_HOST, RUN, WEB, Env, new_run, wait_for


def test_logs_arrive_as_export_logs_service_requests(env: Env, tmp_path: Path) -> None:
    run = new_run()
    env.write(WEB, run, 30)
    env.sync()
    with OtlpServer(OTLP_HOST) as server:
        args = ("app", "/prod/web", "--to", server.url, "--state", str(tmp_path / "s.json"))
        with env.forward(*args, "--filter", f"{RUN}:{run}") as fwd:
            wait_for(
                "30 log records",
                lambda: sum(_count(r) for r in server.received) >= 30 or None,
            )
            assert fwd.terminate() == 0
        assert len(server.received) == len(server.bodies)  # none refused as unparseable
    records = []
    for request in server.received:
        for resource_logs in request.resource_logs:
            resource = {a.key: a.value.string_value for a in resource_logs.resource.attributes}
            assert resource["service.name"] == "web-0"
            for scope_logs in resource_logs.scope_logs:
                assert scope_logs.scope.name == "logway.forward"
                records.extend(scope_logs.log_records)
    assert [r.body.string_value for r in records] == [
        f"/prod/web web-0 line {n}" for n in range(30)
    ]
    first = records[0]
    assert first.severity_number == 9  # SEVERITY_NUMBER_INFO
    assert first.severity_text == "INFO"
    assert first.time_unix_nano > 1_600_000_000 * 10**9
    attributes = {a.key: a.value.string_value for a in first.attributes}
    assert attributes["logway.task_id"] == WEB.task_id
    assert attributes["logway.container_id"] == WEB.container
    assert attributes["logway.cursor"].startswith("s=")


def _count(request: object) -> int:
    return sum(
        len(scope.log_records)
        for resource in request.resource_logs  # type: ignore[attr-defined]
        for scope in resource.scope_logs
    )
