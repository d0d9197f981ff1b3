"""One journal entry as the forwarder received it from the gateway, and the mapping every sink
shares: message, time, priority → severity, host, service, and the task's ids.

The gateway sends dcos-log JSON entries (`{"fields": …, "cursor": …, "realtime_timestamp": …}`)
on node and merged streams, and file events (`{"fields": {AGENT_ID, …, MESSAGE}}`, the
journal cursor as the SSE id) on a task's stream; the journal cursor carries the realtime
timestamp (`t=<hex µs>`), so both give the same record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

FieldValue = str | list[int]

# syslog(3) / RFC 5424 §6.2.1 severities, by journal PRIORITY.
SEVERITY_NAMES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")
DEFAULT_PRIORITY = 6  # an entry without PRIORITY (a task's line): info, as journald stores it
# The task's ids as the shipper writes them (app/shipper), mapped to lower-case attributes.
TASK_FIELDS = ("AGENT_ID", "FRAMEWORK_ID", "EXECUTOR_ID", "CONTAINER_ID", "TASK_ID", "STREAM")
# Where an entry names its app and role itself (a shipper's environment or labels).
_TASK_LABELS = (("DCOS_SPACE", "app_id"), ("MARATHON_APP_ID", "app_id"), ("ROLE", "role"))


class BadRecord(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Record:
    fields: Mapping[str, FieldValue]
    cursor: str  # the journal cursor: the receiver's de-duplication id
    realtime: int  # µs since the epoch

    @classmethod
    def parse(cls, data: bytes, event_id: str | None) -> Record:
        try:
            entry = orjson.loads(data)
            fields = entry["fields"]
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise BadRecord(f"not a log entry: {data[:80]!r}") from exc
        if not isinstance(fields, dict):
            raise BadRecord(f"not a log entry: {data[:80]!r}")
        cursor = entry.get("cursor") or event_id
        if not isinstance(cursor, str) or not cursor:
            raise BadRecord(f"an entry without a cursor: {data[:80]!r}")
        realtime = entry.get("realtime_timestamp")
        if not isinstance(realtime, int):
            realtime = realtime_of(cursor)
        return cls(fields, cursor, realtime)

    def text(self, name: str) -> str | None:
        value = self.fields.get(name)
        if value is None:
            return None
        return value if isinstance(value, str) else bytes(value).decode("utf-8", "replace")

    def raw(self, name: str) -> bytes | None:
        value = self.fields.get(name)
        if value is None:
            return None
        return value.encode() if isinstance(value, str) else bytes(value)

    @property
    def message(self) -> str:
        return self.text("MESSAGE") or ""

    @property
    def priority(self) -> int:
        raw = self.text("PRIORITY")
        if raw is not None and raw.isdigit() and int(raw) < len(SEVERITY_NAMES):
            return int(raw)
        return DEFAULT_PRIORITY

    @property
    def severity(self) -> str:
        return SEVERITY_NAMES[self.priority]

    @property
    def host(self) -> str | None:
        return self.text("_HOSTNAME")

    @property
    def service(self) -> str | None:
        """The unit or syslog identifier, as `journalctl` names a line's source."""
        return self.text("SYSLOG_IDENTIFIER") or self.text("_SYSTEMD_UNIT") or self.text("UNIT")

    def task_ids(self) -> dict[str, str]:
        """AGENT_ID … STREAM that the entry has, plus the app id and role the task carries."""
        ids = {name.lower(): value for name in TASK_FIELDS if (value := self.text(name))}
        for name, key in (
            ("DCOS_SPACE", "app_id"),
            ("MARATHON_APP_ID", "app_id"),
            ("ROLE", "role"),
        ):
            if (value := self.text(name)) and key not in ids:
                ids[key] = value
        return ids

    @property
    def timestamp(self) -> str:
        """RFC 3339 with microseconds, UTC."""
        return rfc3339(self.realtime)

    def event(self) -> dict[str, Any]:
        """The shared JSON shape (Logstash's `json_event`, the file sink's NDJSON lines)."""
        event: dict[str, Any] = {
            "@timestamp": self.timestamp,
            "@version": "1",
            "message": self.message,
            "severity": self.severity,
            "priority": self.priority,
        }
        if (host := self.host) is not None:
            event["host"] = host
        if (service := self.service) is not None:
            event["service"] = service
        event.update(self.task_ids())
        event["cursor"] = self.cursor
        event["fields"] = self.fields
        return event


def realtime_of(cursor: str) -> int:
    """The `t=` part of a journal cursor (`s=…;i=…;b=…;m=…;t=…;x=…`), in µs."""
    for part in cursor.split(";"):
        if part.startswith("t="):
            try:
                return int(part[2:], 16)
            except ValueError:
                break
    raise BadRecord(f"a cursor without a time: {cursor[:80]!r}")


def rfc3339(usec: int) -> str:
    moment = datetime.fromtimestamp(usec // 1_000_000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{usec % 1_000_000:06d}Z"
