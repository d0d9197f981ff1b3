"""Resource ids: one spelling per resource, and the hierarchy grants follow.

A rid is `:`-separated names (`dcos:mesos:agent:task:app_id`); the last segment may be a
`/`-separated path (a Marathon app id `/prod/web`, a hierarchical role `dev/backend`). A grant
covers its own rid and every rid below it, on segment boundaries only:

    dcos:mesos:agent:task:app_id        covers  dcos:mesos:agent:task:app_id:/prod/web
    dcos:mesos:agent:task:app_id:/dev   covers  dcos:mesos:agent:task:app_id:/dev/api
    dcos:mesos:agent:task:app_id:/dev   never   dcos:mesos:agent:task:app_id:/devops

The canonical form is a grammar, not a rewrite: `canonical` returns a valid rid unchanged and
raises `InvalidResourceId` for anything else, so no two strings name one resource and nothing
is decoded, folded or resolved on the way to a comparison (OWASP API1: encoding, case, `..`
and trailing-slash variants must not reach another resource).

* Lower-case only (`a-z 0-9 _ . -`, plus the separators). DC/OS rids and Marathon app ids are
  lower-case; folding case would merge `/Prod` into `/prod`, so upper case is rejected on both
  sides of a comparison rather than folded.
* No `%`: rids are never percent-encoded at this layer (callers decode a URL path once, before
  building a rid). Decoding here would let `%2F` become a path separator, or `%2e%2e` a `..`.
* No empty segment or path component (`a::b`, `/dev//api`, a trailing `:` or `/`), no `.` or
  `..` component. `/dev/` and `/dev/../prod` are rejected, never resolved to `/dev` or `/prod`.
* `/` appears only in the last segment, which may start with it (an absolute app id).
  `app_id:/` alone is rejected: the whole tree is spelled `...:app_id` with no suffix.
* No `*`: DC/OS rids have no wildcards; rejecting it keeps anyone from believing they do.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from app.core.errors import BadRequest

MAX_RID_LENGTH = 1024

_ALLOWED = re.compile(r"[a-z0-9_.\-:/]+")
_DOT_NAMES = frozenset({".", ".."})
_SEPARATORS = ":/"


class InvalidResourceId(BadRequest, ValueError):
    """Not a canonical resource id (400 where a client supplied it)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, parameter="rid")


def canonical(rid: str) -> str:
    """`rid` itself if it is in canonical form; otherwise raises `InvalidResourceId`."""
    if not rid:
        raise InvalidResourceId("empty resource id")
    if len(rid) > MAX_RID_LENGTH:
        raise InvalidResourceId(f"resource id longer than {MAX_RID_LENGTH} characters")
    if _ALLOWED.fullmatch(rid) is None:
        raise InvalidResourceId(_bad_character(rid))
    *names, last = rid.split(":")
    for name in names:
        if "/" in name:
            raise InvalidResourceId("'/' may appear only in the last segment of a resource id")
        _check_name(name)
    components = last.split("/")
    if len(components) > 1 and components[0] == "":
        components = components[1:]  # an absolute path: one leading '/'
    for component in components:
        _check_name(component)
    return rid


def is_canonical(rid: str) -> bool:
    try:
        canonical(rid)
    except InvalidResourceId:
        return False
    return True


def covers(grant_rid: str, requested_rid: str) -> bool:
    """Does a grant on `grant_rid` reach `requested_rid`? False if either is malformed."""
    if not (is_canonical(grant_rid) and is_canonical(requested_rid)):
        return False
    return covers_canonical(grant_rid, requested_rid)


def covers_canonical(grant_rid: str, requested_rid: str) -> bool:
    """`covers` for rids already known to be canonical (the authorizer's hot path).

    A canonical rid never ends in a separator, so a prefix that stops right before `:` or `/`
    is exactly an ancestor, and `/dev` can never be a prefix match of `/devops`.
    """
    if not requested_rid.startswith(grant_rid):
        return False
    n = len(grant_rid)
    return len(requested_rid) == n or requested_rid[n] in _SEPARATORS


def rid_path(rid: str) -> str:
    """A resource id as one URL path segment. DC/OS IAM clients encode `/` twice (`%252F`) so
    the id survives a proxy's decoding; the IAM decodes the remainder."""
    return quote(rid.replace("/", "%2F"), safe=":")


def _check_name(name: str) -> None:
    if not name:
        raise InvalidResourceId("empty segment in resource id (doubled or trailing ':' or '/')")
    if name in _DOT_NAMES:
        raise InvalidResourceId("'.' and '..' are not allowed in resource ids")


def _bad_character(rid: str) -> str:
    if "%" in rid:
        return "percent-encoding is not allowed in resource ids"
    if rid.lower() != rid:
        return "resource ids are lower-case"
    bad = next(c for c in rid if _ALLOWED.fullmatch(c) is None)
    return f"character {bad!r} is not allowed in resource ids"
