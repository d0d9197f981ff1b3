"""One audit line per authorization decision, in Admin Router's shape.

    type=audit object=dcos:adminrouter:ops:system-logs action=read result=deny
        reason="no matching grant" uid=alice

(reference/dcos-logs-api.md §4.2). Values that are not plain ids (a uid or a malformed rid
with spaces, quotes or newlines) are written as JSON strings, so one decision is always one
parseable line. Nothing here ever sees a token.
"""

from __future__ import annotations

import json
import logging
import re

from app.authz.model import Action, Decision

AUDIT_LOGGER = "logway.audit"

_log = logging.getLogger(AUDIT_LOGGER)
_PLAIN = re.compile(r"[A-Za-z0-9_.:/@+\-]+")


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


def _value(text: str) -> str:
    return text if _PLAIN.fullmatch(text) else _quoted(text)


def _quoted(text: str) -> str:
    return json.dumps(text)
