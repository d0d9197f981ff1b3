"""One journal entry as the forwarder received it from the gateway, and the mapping every sink
shares: message, time, priority → severity, host, service, and the task's ids.

The gateway sends dcos-log JSON entries (`{"fields": …, "cursor": …, "realtime_timestamp": …}`)
on node and merged streams, and file events (`{"fields": {AGENT_ID, …, MESSAGE}}`, the
journal cursor as the SSE id) on a task's stream; the journal cursor carries the realtime
timestamp (`t=<hex µs>`), so both give the same record.
"""

from __future__ import annotations

import functools
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


class BadRecord(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Record:
    fields: Mapping[str, FieldValue]
    cursor: str  # the journal cursor: the receiver's de-duplication id
    realtime: int  # µs since the epoch
    # The task's Marathon app id and Mesos role from the cluster state the gateway serves
    # (`app.forward.tasks`), for every line of a known task; None: the entry's own labels.
    app_id: str | None = None
    role: str | None = None

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

    def labelled(self, app_id: str | None, role: str | None) -> Record:
        return Record(self.fields, self.cursor, self.realtime, app_id, role)

    def text(self, name: str) -> str | None:
        return _text(self.fields.get(name))

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
        return _priority(self.fields.get("PRIORITY"))

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
        """AGENT_ID … STREAM that the entry has, plus the app id and role of its task: the
        cluster state's where the gateway knows the task, else the entry's own labels."""
        get = self.fields.get
        ids: dict[str, str] = {}
        for name, key in _TASK_KEYS:
            if (value := _text(get(name))) is not None and value:
                ids[key] = value
        app_id, role = self.app_id, self.role
        if app_id is None:
            app_id = _text(get("DCOS_SPACE")) or _text(get("MARATHON_APP_ID"))
        if role is None:
            role = _text(get("ROLE"))
        if app_id:
            ids["app_id"] = app_id
        if role:
            ids["role"] = role
        return ids

    @property
    def timestamp(self) -> str:
        """RFC 3339 with microseconds, UTC."""
        return rfc3339(self.realtime)

    def event(self) -> dict[str, Any]:
        """The shared JSON shape (Logstash's `json_event`, the file sink's NDJSON lines).
        On every entry of a forward: its fields are read once each, no property twice."""
        get = self.fields.get
        priority = _priority(get("PRIORITY"))
        event: dict[str, Any] = {
            "@timestamp": rfc3339(self.realtime),
            "@version": "1",
            "message": _text(get("MESSAGE")) or "",
            "severity": SEVERITY_NAMES[priority],
            "priority": priority,
        }
        if (host := _text(get("_HOSTNAME"))) is not None:
            event["host"] = host
        service = (
            _text(get("SYSLOG_IDENTIFIER")) or _text(get("_SYSTEMD_UNIT")) or _text(get("UNIT"))
        )
        if service is not None:
            event["service"] = service
        event.update(self.task_ids())
        event["cursor"] = self.cursor
        event["fields"] = self.fields
        return event


_TASK_KEYS = tuple((name, name.lower()) for name in TASK_FIELDS)


def _text(value: FieldValue | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return bytes(value).decode("utf-8", "replace")


def _priority(value: FieldValue | None) -> int:
    if isinstance(value, str) and len(value) == 1 and "0" <= value <= "7":
        return ord(value) - 48
    return DEFAULT_PRIORITY


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
    seconds, fraction = divmod(usec, 1_000_000)
    return f"{_second(seconds)}.{fraction:06d}Z"


@functools.lru_cache(maxsize=256)
def _second(seconds: int) -> str:
    """The whole second, formatted once for the many entries that share it."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
