"""Where a follow starts, read from its query the way the node reader reads it
(`app/journal/params.py`), so the gateway knows when a late caller may join a shared
upstream follow and still get exactly the bytes it would get alone (issue 17).

Three kinds of start:
- *after an event id* (`Last-Event-ID`): the entries after that id, skips ignored. A caller
  joins a share whose recent events hold that id, and gets the events after it.
- *the last N* (no cursor, a backward skip of N, no forward skip, no `until`): the last N
  entries when the read starts, then new ones. A share that has delivered at least N events
  and whose node skipped back all N (`X-Journal-Skip-Prev`) holds, in its last N events,
  exactly what the node would send now.
- *fixed* (a cursor, `since`, the head, `until`): the same bytes whenever it starts; a
  caller joins only a share whose whole history is still held.

Never shared: follows that end after a count (`limit`) or add context around matches
(`context`), whose bytes depend on more than the entries after the join point; non-SSE
follows (no event ids to join at); queries the node would refuse (it answers each alone).
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import QueryParams

from app.proxy.call import SSE, UpstreamCall

# Query parameters that make a follow's bytes depend on more than the entries after a point.
_NOT_SHARED = ("limit", "context")


@dataclass(frozen=True, slots=True)
class Start:
    """`after`: a `Last-Event-ID`; `last`: N of a last-N start; neither: a fixed start."""

    after: str | None = None
    last: int = 0


def _get(params: QueryParams, name: str) -> str | None:
    value = params.get(name)  # the last value, as the node reads it
    return value if value else None


def _count(raw: str | None) -> int | None:
    if raw is None:
        return 0
    digits = raw[1:] if raw[:1] in "+-" else raw
    return int(raw) if digits.isdigit() else None


def follow_start(call: UpstreamCall) -> Start | None:
    """The start of a shareable follow, or None when `call` must have its own upstream."""
    accept = call.header(b"accept")
    if call.method != "GET" or accept is None or SSE not in accept.lower():
        return None
    params = QueryParams(call.query)
    if any(_get(params, name) for name in _NOT_SHARED):
        return None
    last_event_id = call.header(b"last-event-id")
    if last_event_id:
        return Start(after=last_event_id)
    if "/v2/" in call.path:
        cursor, skip = _get(params, "cursor"), _count(_get(params, "skip"))
        if skip is None:
            return None
        skip_next, skip_prev = (skip, 0) if skip > 0 else (0, -skip)
        if cursor == "END":
            skip_prev = max(skip_prev, 1)
        elif cursor is not None:
            return Start()  # BEG or a cursor
    else:
        cursor = _get(params, "cursor")
        forward, backward = _count(_get(params, "skip_next")), _count(_get(params, "skip_prev"))
        if forward is None or backward is None or forward < 0 or backward < 0:
            return None
        skip_next, skip_prev = forward, backward
        if cursor is not None:
            return Start()
    if skip_prev > 0 and skip_next == 0 and _get(params, "until") is None:
        return Start(last=skip_prev)
    return Start()


__all__ = ["Start", "follow_start"]
