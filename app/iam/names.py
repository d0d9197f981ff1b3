"""Syntax of the IAM's identifiers: uids, gids, resource ids and actions.

Checked at the HTTP boundary (400 naming the field) so that the store, the audit log and the
authorizer only ever see well-formed values.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from app.authz.model import Action
from app.authz.resource import canonical
from app.core.errors import BadRequest

# DC/OS: "uids ... may contain letters, numbers, and the characters . _ @ -" (length bounded here).
_ID = re.compile(r"[a-zA-Z0-9._@-]{1,96}")
RID_PREFIX = "dcos:"
MAX_RID_LENGTH = 512
_RID = re.compile(rf"[\x21-\x7e]{{1,{MAX_RID_LENGTH}}}")
MAX_DESCRIPTION_LENGTH = 1024


def uid(value: str, *, field: str = "uid") -> str:
    if not _ID.fullmatch(value):
        raise BadRequest(
            f"{field}: must be 1-96 characters of letters, digits and . _ @ -", parameter=field
        )
    return value


def gid(value: str) -> str:
    return uid(value, field="gid")


def rid(value: str, *, field: str = "rid") -> str:
    """A resource id: `dcos:`-prefixed, printable ASCII, no whitespace.

    DC/OS clients send a `/` inside a rid as `%252F` (so that it survives one decoding by the
    proxy in front of the IAM); what reaches us as `%2F` is decoded once more here.
    """
    if "%" in value:
        try:
            value = unquote(value, errors="strict")
        except UnicodeDecodeError:
            value = ""  # refused below
    if not (value.startswith(RID_PREFIX) and _RID.fullmatch(value)):
        raise BadRequest(
            f"{field}: must start with '{RID_PREFIX}' and have at most {MAX_RID_LENGTH} "
            "printable ASCII characters, no whitespace",
            parameter=field,
        )
    try:
        # The authorizer's grammar: an ACL it would ignore must not be stored.
        return canonical(value)
    except ValueError as exc:
        raise BadRequest(f"{field}: {exc}", parameter=field) from None


def action(value: str, *, field: str = "action") -> Action:
    try:
        return Action(value)
    except ValueError:
        choices = ", ".join(a.value for a in Action)
        raise BadRequest(f"{field}: must be one of {choices}", parameter=field) from None
