"""Audit lines in Admin Router's shape, one writer for the whole gateway: one line per
authorization decision, and one per IAM event (a login, an IAM admin call).

    type=audit object=dcos:adminrouter:ops:system-logs action=read result=deny
        reason="no matching grant" uid=alice
    type=audit action=login result=deny uid=alice srcip=::1 reason=...

(reference/dcos-logs-api.md §4.2). Values that are not plain ids (a uid or a malformed rid
with spaces, quotes or newlines) are written as JSON strings, so one event is always one
parseable line. Nothing here ever sees a password, a token or a raw header.
"""

from __future__ import annotations

import json
import logging
import re

from app.authz.model import Action, Decision

AUDIT_LOGGER = "logway.audit"
# A quoted value is cut to this many characters (the longest valid resource id).
MAX_VALUE_CHARS = 1024

_log = logging.getLogger(AUDIT_LOGGER)
_PLAIN = re.compile(r"[A-Za-z0-9_.:/@+{}\-]+")


def audit(uid: str, rid: str, action: Action, decision: Decision, reason: str) -> None:
    if _log.isEnabledFor(logging.INFO):
        _log.info(audit_line(uid, rid, action, decision, reason))


def audit_line(uid: str, rid: str, action: Action, decision: Decision, reason: str) -> str:
    """The line itself, for a caller that renders it once and `emit`s it on every decision."""
    return (
        f"type=audit object={_value(rid)} action={action.value} result={decision.value} "
        f"reason={_quoted(reason)} uid={_value(uid)}"
    )


def emit(line: str) -> None:
    if _log.isEnabledFor(logging.INFO):
        _log.info(line)


def audit_event(action: str, result: str, **fields: str | None) -> None:
    """`type=audit action=… result=… name=value…` for an IAM event; None is written `-`."""
    if _log.isEnabledFor(logging.INFO):
        parts = [f"type=audit action={_value(action)} result={_value(result)}"]
        parts += [f"{name}={_value(value)}" for name, value in fields.items()]
        _log.info(" ".join(parts))


def _value(text: str | None) -> str:
    if text is None:
        return "-"
    return text if _PLAIN.fullmatch(text) else _quoted(text)


def _quoted(text: str) -> str:
    return json.dumps(text[:MAX_VALUE_CHARS])  # control characters escaped
