"""Audit lines in Adminrouter's shape: `type=audit action=login result=deny uid=… srcip=…`.

Values are identifiers validated before they get here, fixed reason strings and addresses;
never a password, a token or a raw header. Anything else is quoted with its escapes shown.
"""

from __future__ import annotations

import json
import logging
import re

log = logging.getLogger("logway.audit")

_PLAIN = re.compile(r"[A-Za-z0-9._@:/{}-]+")


def audit(action: str, result: str, **fields: str | None) -> None:
    parts = [f"type=audit action={_value(action)} result={_value(result)}"]
    parts += [f"{name}={_value(value)}" for name, value in fields.items()]
    log.info(" ".join(parts))


def _value(value: str | None) -> str:
    if value is None:
        return "-"
    if _PLAIN.fullmatch(value):
        return value
    return json.dumps(value[:200])  # quoted, control characters escaped
