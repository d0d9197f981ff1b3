"""`otlp+http(s)://host:port/v1/logs`: OTLP/HTTP with the JSON encoding
(https://opentelemetry.io/docs/specs/otlp/#otlphttp): one resource per host and service,
severity from PRIORITY, the task's ids and the cursor as log record attributes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import orjson

from app.forward import http_sink
from app.forward.record import Record

SCOPE = {"name": "logway.forward", "version": "1"}
# PRIORITY → OTel SeverityNumber (logs data model, "Mapping of SeverityNumber"): syslog's
# emerg/alert/crit as FATAL/ERROR3/ERROR2, notice as INFO2.
SEVERITY_NUMBERS = (21, 19, 18, 17, 13, 10, 9, 5)
SEVERITY_TEXTS = ("FATAL", "ERROR3", "ERROR2", "ERROR", "WARN", "INFO2", "INFO", "DEBUG")


class OtlpSink:
    def __init__(self, url: str) -> None:
        self.name = http_sink.target(url, "otlp+", "/v1/logs")
        self.url = self.name
        self._client = http_sink.client(url)

    @classmethod
    def from_url(cls, url: str) -> OtlpSink:
        return cls(url)

    async def send(self, batch: Sequence[Record]) -> None:
        try:
            response = await self._client.post(
                self.url,
                content=orjson.dumps(request(batch)),
                headers={"Content-Type": "application/json"},
            )
        except httpx.TransportError as exc:
            raise http_sink.transport_error(self.name, exc) from exc
        http_sink.check(self.name, response)

    async def close(self) -> None:
        await self._client.aclose()


def _attr(key: str, value: str) -> dict[str, Any]:
    return {"key": key, "value": {"stringValue": value}}


def log_record(record: Record) -> dict[str, Any]:
    priority = record.priority
    attributes = [_attr(f"logway.{k}", v) for k, v in record.task_ids().items()]
    attributes.append(_attr("logway.cursor", record.cursor))
    nanos = str(record.realtime * 1000)
    return {
        "timeUnixNano": nanos,
        "observedTimeUnixNano": nanos,
        "severityNumber": SEVERITY_NUMBERS[priority],
        "severityText": SEVERITY_TEXTS[priority],
        "body": {"stringValue": record.message},
        "attributes": attributes,
    }


def request(batch: Sequence[Record]) -> dict[str, Any]:
    """An `ExportLogsServiceRequest` in OTLP's JSON mapping, records grouped by resource."""
    groups: dict[tuple[str | None, str | None], list[dict[str, Any]]] = {}
    for record in batch:
        groups.setdefault((record.host, record.service), []).append(log_record(record))
    resource_logs = []
    for (host, service), records in groups.items():
        attributes = []
        if host is not None:
            attributes.append(_attr("host.name", host))
        if service is not None:
            attributes.append(_attr("service.name", service))
        resource_logs.append(
            {
                "resource": {"attributes": attributes},
                "scopeLogs": [{"scope": SCOPE, "logRecords": records}],
            }
        )
    return {"resourceLogs": resource_logs}
