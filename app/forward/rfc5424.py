"""RFC 5424 syslog messages with RFC 6587 octet-counting framing (`LEN SP MSG`), the task's
ids and the journal cursor in structured data.

    <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [logway@32473 agent_id="…" …] BOM MSG

32473 is the enterprise number RFC 5612 reserves for documentation; `logway@32473` is the
SD-ID a receiver matches on.
"""

from __future__ import annotations

from app.forward.record import Record

SD_ID = "logway@32473"
DEFAULT_FACILITY = 1  # user-level messages, as syslog(3) when a line names none
BOM = "\ufeff"
_MAX = {"hostname": 255, "app": 48, "procid": 128}


def _header_value(value: str | None, limit: int) -> str:
    """A header field: printable US-ASCII without spaces (RFC 5424 §6), or NILVALUE."""
    if not value:
        return "-"
    cleaned = "".join(c if "!" <= c <= "~" else "_" for c in value)[:limit]
    return cleaned or "-"


def _param_value(value: str) -> str:
    # §6.3.3: `"`, `\` and `]` are escaped with a backslash.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def message(record: Record) -> bytes:
    facility = record.text("SYSLOG_FACILITY")
    fac = int(facility) if facility and facility.isdigit() and int(facility) < 24 else None
    pri = (DEFAULT_FACILITY if fac is None else fac) * 8 + record.priority
    params = {**record.task_ids(), "cursor": record.cursor}
    sd = "[" + SD_ID + "".join(f' {k}="{_param_value(v)}"' for k, v in params.items()) + "]"
    head = " ".join(
        (
            f"<{pri}>1",
            record.timestamp,
            _header_value(record.host, _MAX["hostname"]),
            _header_value(record.service, _MAX["app"]),
            _header_value(record.text("_PID") or record.text("SYSLOG_PID"), _MAX["procid"]),
            _header_value(record.text("STREAM"), 32),  # MSGID: stdout/stderr of a task
            sd,
        )
    )
    return f"{head} {BOM}{record.message}".encode("utf-8", "replace")


def frame(record: Record) -> bytes:
    """RFC 6587 §3.4.1 octet counting: the receiver needs no delimiter, so a message may
    hold newlines."""
    msg = message(record)
    return b"%d %b" % (len(msg), msg)
