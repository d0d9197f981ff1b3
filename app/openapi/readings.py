"""How a log route reads the journal, as OpenAPI: its query parameters and headers (the rules
of `app.journal.params`), and its responses in the three media types of `app.journal.encoders`.

The node reader's routes are plain `Request` handlers, so FastAPI sees none of this; each
route is given one `Reading` (see `app.openapi.node`), and the gateway's relayed routes reuse
the node reader's."""

from __future__ import annotations

import enum
from typing import Any

from app.core.config import GatewaySettings
from app.journal.cursor import MAX_CURSOR_LENGTH
from app.journal.encoders import JSON, SSE, TEXT
from app.journal.params import INT64_MAX, UINT64_MAX
from app.journal.search import MAX_PATTERN_BYTES, MAX_PATTERNS
from app.merge.cursor import MAX_ENCODED
from app.node.routes import ALLOWED_FIELDS, TASK_FILES

Json = dict[str, Any]

# The documents describe a gateway with its default settings.
MERGE_MAX_SKIP_PREV: int = GatewaySettings.model_fields["merge_max_skip_prev"].default

# Formats JSON Schema has no word for (a generator treats them as plain strings; the contract
# test gives schemathesis a strategy for each): an RE2 regular expression, and a merged read's
# composite cursor.
RE2_FORMAT = "re2"
MERGED_CURSOR_FORMAT = "logway-merged-cursor"


class Reading(enum.StrEnum):
    V1_RANGE = "v1-range"  # a finite read, v1 parameters
    V1_DOWNLOAD = "v1-download"  # the same, gzipped as a file
    V1_STREAM = "v1-stream"  # follows
    V1_FIELDS = "v1-fields"  # a field's values, JSON
    V1_COUNT = "v1-count"  # a v1 range's size (with grep=: its matches), JSON
    V2_COMPONENT = "v2-component"  # v2 parameters; follows with Accept: text/event-stream
    V2_TASK_FILE = "v2-task-file"  # the same over a task's stdout/stderr lines
    MERGED_RANGE = "merged-range"  # a role's or app's tasks on every agent, merged in order
    MERGED_STREAM = "merged-stream"  # the same, followed
    MERGED_COUNT = "merged-count"  # the size of a merged range, JSON
    MERGED_DOWNLOAD = "merged-download"  # a merged range, gzipped as a file
    V2_TASK_COUNT = "v2-task-count"  # the size of a task file's range, JSON

    @property
    def is_log(self) -> bool:
        """Serves entries in the three media types (not a field list or a gzip file)."""
        return self not in (
            Reading.V1_FIELDS,
            Reading.V1_DOWNLOAD,
            Reading.V1_COUNT,
            Reading.MERGED_COUNT,
            Reading.MERGED_DOWNLOAD,
            Reading.V2_TASK_COUNT,
        )


def _query(name: str, schema: Json, description: str, **extra: Any) -> Json:
    return {"name": name, "in": "query", "schema": schema, "description": description, **extra}


_UINT = {"type": "integer", "minimum": 0, "maximum": UINT64_MAX}
# RFC 3339 with a zone, or unix microseconds (app.journal.params.parse_time).
_TIME = {
    "anyOf": [
        {"type": "string", "format": "date-time"},
        {"type": "string", "pattern": "^[0-9]{1,19}$"},
    ],
    "examples": ["2026-11-24T10:00:00Z", "1795514400000000"],
}
# sd_journal_get_cursor(3)'s six fields in order (app.journal.cursor): the seqnum and boot ids
# are 128-bit ids (libsystemd refuses a shorter one), the others hex 64-bit numbers.
JOURNAL_CURSOR = (
    "s=[0-9a-f]{32};i=[0-9a-f]{1,16};b=[0-9a-f]{32};"
    "m=[0-9a-f]{1,16};t=[0-9a-f]{1,16};x=[0-9a-f]{1,16}"
)
_CURSOR = {"type": "string", "pattern": f"^{JOURNAL_CURSOR}$", "maxLength": MAX_CURSOR_LENGTH}
# A merged read's composite cursor (app.merge.cursor): `m2.` (or the older `m1.`) and
# base64url JSON; its inside is the server's own, so a client only ever sends one it was given.
_MERGED_CURSOR = {
    "type": "string",
    "format": MERGED_CURSOR_FORMAT,
    "pattern": "^m[12]\\.[A-Za-z0-9_-]+$",
    "maxLength": MAX_ENCODED,
}
# A journal field name journald will match on (app.journal.params): not one of its own `__`
# fields; upper-cased by the server.
FILTER_PATTERN = "^([A-Za-z][A-Za-z0-9_]{0,63}|_[A-Za-z0-9][A-Za-z0-9_]{0,62}):"

# components/parameters
PARAMETERS: Json = {
    "grep": _query(
        "grep",
        {
            "type": "array",
            "items": {
                "type": "string",
                "format": RE2_FORMAT,
                "minLength": 1,
                "maxLength": MAX_PATTERN_BYTES,
            },
            "maxItems": MAX_PATTERNS,
        },
        "Keep only entries whose MESSAGE matches this RE2 regular expression (linear time "
        "whatever the pattern; `(?i)` ignores case). Repeatable: any pattern matching keeps "
        "the entry. Skips and `limit` then count matches. At most 16 patterns of at most 1024 "
        "bytes each (UTF-8); invalid or oversized: 400.",
        explode=True,
    ),
    "context": _query(
        "context",
        {"type": "integer", "minimum": 0, "maximum": 100},
        "With `grep`: N entries of the same source (a task's stream, else the unit) before "
        "and after each match; entries carry `match` (true/false) and `gap` (a new group) "
        "in JSON/SSE, text has `--` between groups.",
    ),
    "filter": _query(
        "filter",
        {"type": "array", "items": {"type": "string", "pattern": FILTER_PATTERN}},
        "`FIELD:value`, repeatable: journal entries whose FIELD (upper-cased) has that value. "
        "Values of one field are ORed, different fields ANDed (journald's rule); the value "
        "may contain `:`. On a task's route a filter can only narrow the task's lines: one "
        "contradicting the path's ids is a 400.",
        style="form",
        explode=True,
        examples={"unit": {"value": ["_SYSTEMD_UNIT:dcos-mesos-master.service"]}},
    ),
    "cursor": _query(
        "cursor",
        _CURSOR,
        "A journald cursor (`s=…;i=…;b=…;m=…;t=…;x=…`, from an entry's `cursor` or an SSE "
        "`id`): the read starts at the entry after it; one that names no entry of this node's "
        "journal the filters match is a 400. Percent-escapes in the value are decoded once "
        "more, as dcos-log did.",
    ),
    "limit": _query("limit", _UINT, "At most this many entries; 0 or absent: no limit."),
    "skip_next": _query("skip_next", _UINT, "Skip this many entries forward first."),
    "skip_prev": _query(
        "skip_prev",
        _UINT,
        "Step this many entries back first; without `cursor`, from the tail: "
        "`skip_prev=10` reads the last ten entries.",
    ),
    "read_reverse": _query(
        "read_reverse", {"type": "boolean"}, "Newest first (`1`, `t`, `true`, …)."
    ),
    "since": _query(
        "since", _TIME, "Entries at or after this time: RFC 3339 with a zone, or unix µs."
    ),
    "until": _query(
        "until", _TIME, "Entries at or before this time: RFC 3339 with a zone, or unix µs."
    ),
    "postfix": _query(
        "postfix", {"type": "string"}, "Appended to the download's file name (`-<postfix>`)."
    ),
    "cursorV2": _query(
        "cursor",
        {
            "type": "string",
            "pattern": f"^(BEG|END|{JOURNAL_CURSOR})$",
            "maxLength": MAX_CURSOR_LENGTH,
            "examples": ["BEG", "END"],
        },
        "`BEG`: from the first entry; `END`: from the last one (as `skip=-1`); or a journald "
        "cursor, read from the entry after it. Percent-escapes are decoded once more.",
    ),
    "skip": _query(
        "skip",
        {"type": "integer", "minimum": -INT64_MAX, "maximum": INT64_MAX},
        "Positive: skip this many entries forward; negative: step back this many, so "
        "`cursor=END&skip=-10` (or `skip=-10`) reads the last ten entries.",
    ),
    "mergedSkipPrev": _query(
        "skip_prev",
        {**_UINT, "maximum": MERGE_MAX_SKIP_PREV},
        "The last N entries of the merged whole; at most `merge_max_skip_prev` (a gateway "
        f"setting, {MERGE_MAX_SKIP_PREV:,} by default). Not combinable with `cursor`.",
    ),
    "mergedCursor": _query(
        "cursor",
        _MERGED_CURSOR,
        "The SSE `id` of an entry of an earlier merged read of the same role or app (a "
        "composite cursor, `m2.…`, holding every agent's position and which of its containers "
        "that position covers; the older `m1.…` ids are still accepted): the read continues "
        "after it. Not combinable with `skip_prev`/`skip_next`.",
    ),
    "include": _query(
        "include",
        {"type": "string", "enum": ["scheduler"]},
        "`scheduler`: also Marathon's own lines (`dcos-marathon.service` on the node the active "
        "Marathon framework registered from, as `/system/v1/leader/marathon/logs/` finds it) "
        "that name the app or one below it (a role: one of the role's apps), merged in time "
        "order with the same composite-cursor resume. Needs what the Marathon leader's journal "
        "needs (`dcos:adminrouter:ops:system-logs` read), else 403; 503 when that leader is "
        "unknown. `skip_prev=N` takes Marathon's share from its unit's last 8·N lines.",
    ),
    "mergedLastEventId": {
        "name": "Last-Event-ID",
        "in": "header",
        "schema": _MERGED_CURSOR,
        "description": (
            "The composite SSE `id` the client saw last: the merged stream resumes right after "
            "it on every agent, `cursor` and skips ignored."
        ),
    },
    "Last-Event-ID": {
        "name": "Last-Event-ID",
        "in": "header",
        "schema": _CURSOR,
        "description": (
            "The SSE `id` (a journald cursor) the client saw last: the read resumes right "
            "after it and `cursor`/skips are ignored, so a reconnecting follower repeats no "
            "entry and loses none."
        ),
    },
}

_V1 = (
    "filter",
    "cursor",
    "limit",
    "skip_next",
    "skip_prev",
    "read_reverse",
    "since",
    "until",
    "grep",
    "context",
)
_V1_STREAM = (
    "filter",
    "cursor",
    "skip_next",
    "skip_prev",
    "since",
    "until",
    "grep",
    "context",
    "Last-Event-ID",
)
_V2 = ("filter", "cursorV2", "skip", "limit", "since", "until", "grep", "context", "Last-Event-ID")
_MERGED = (
    "filter",
    "mergedCursor",
    "mergedSkipPrev",
    "since",
    "until",
    "grep",
    "context",
    "include",
)
_PARAMETERS_OF: dict[Reading, tuple[str, ...]] = {
    Reading.V1_RANGE: _V1,
    Reading.V1_DOWNLOAD: (*_V1, "postfix"),
    Reading.V1_STREAM: _V1_STREAM,
    Reading.V1_FIELDS: (),
    Reading.V1_COUNT: _V1,
    Reading.V2_COMPONENT: _V2,
    Reading.V2_TASK_FILE: _V2,
    Reading.MERGED_RANGE: (*_MERGED, "skip_next", "limit"),
    Reading.MERGED_STREAM: (*_MERGED, "mergedLastEventId"),
    Reading.MERGED_COUNT: (
        "filter",
        "mergedSkipPrev",
        "skip_next",
        "limit",
        "since",
        "until",
        "grep",
    ),
    Reading.MERGED_DOWNLOAD: (*_MERGED, "skip_next", "limit", "postfix"),
    Reading.V2_TASK_COUNT: ("filter", "cursorV2", "skip", "limit", "since", "until", "grep"),
}


def parameters(reading: Reading) -> list[Json]:
    return [{"$ref": f"#/components/parameters/{name}"} for name in _PARAMETERS_OF[reading]]


_FIELD_VALUE = {
    "anyOf": [
        {"type": "string"},
        {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 255}},
    ],
    "description": "UTF-8 text, or the value's bytes when it is not UTF-8 (journalctl's form).",
}
_TASK_EVENT_FIELDS = ("AGENT_ID", "CONTAINER_ID", "EXECUTOR_ID", "FILE", "FRAMEWORK_ID", "MESSAGE")

# components/schemas
SCHEMAS: Json = {
    "TaskFile": {"type": "string", "enum": sorted(TASK_FILES)},
    "JournalFieldName": {"type": "string", "enum": list(ALLOWED_FIELDS)},
    "JournalEntry": {
        "type": "object",
        "description": (
            "One journal entry, as dcos-log wrote it. An `application/json` log body is NDJSON: "
            "one such object per line, each line ending in a newline, not a JSON array. An "
            "SSE event's `data:` is one such object."
        ),
        "properties": {
            "fields": {
                "type": "object",
                "additionalProperties": _FIELD_VALUE,
                "description": "Every field of the entry (MESSAGE, _SYSTEMD_UNIT, …).",
            },
            "cursor": {"type": "string", "description": "The entry's journald cursor."},
            "monotonic_timestamp": {"type": "integer", "description": "µs since boot."},
            "realtime_timestamp": {"type": "integer", "description": "µs since the epoch."},
        },
        "required": ["fields", "cursor", "monotonic_timestamp", "realtime_timestamp"],
        "examples": [
            {
                "fields": {"MESSAGE": "hello", "_SYSTEMD_UNIT": "dcos-mesos-slave.service"},
                "cursor": "s=6d2c;i=1a;b=2f4e;m=3c8a1;t=5f8e0c2b1a000;x=9e1",
                "monotonic_timestamp": 248_993,
                "realtime_timestamp": 1_795_514_400_000_000,
            }
        ],
    },
    "TaskFileEvent": {
        "type": "object",
        "description": (
            "The `data:` of a v2 task file SSE event (dcos-log's shape): the line and the ids "
            'of the task it came from; `""` for an id the entry lacks.'
        ),
        "properties": {
            "fields": {
                "type": "object",
                "properties": {name: _FIELD_VALUE for name in _TASK_EVENT_FIELDS},
                "required": list(_TASK_EVENT_FIELDS),
            }
        },
        "required": ["fields"],
    },
}

_ENTRY = "#/components/schemas/JournalEntry"
_TEXT = {
    "type": "string",
    "description": (
        "One line per entry that has a MESSAGE: `YYYY-MM-DD HH:MM:SS: MESSAGE` (the node's "
        "local time); entries without MESSAGE are left out."
    ),
    "examples": ["2026-11-24 10:00:00: hello\n"],
}
_LINES = {
    "type": "string",
    "description": "The task's lines as it wrote them, `MESSAGE` and a newline each.",
    "examples": ["hello\n"],
}
_PING = "`: ping` comments while idle (the heartbeat) keep proxies from closing the stream."


def _sse(description: str, example: str, *, data: str = "JournalEntry") -> Json:
    # `x-sse-data`: the schema of each event's `data:` (OpenAPI 3.1 cannot say it otherwise).
    return {
        "schema": {"type": "string", "description": description, "examples": [example]},
        "x-sse-data": f"#/components/schemas/{data}",
    }


_EXAMPLE_ID = "s=6d2c;i=1a;b=2f4e;m=3c8a1;t=5f8e0c2b1a000;x=9e1"
_EXAMPLE_DATA = (
    '{"fields":{"MESSAGE":"hello"},"cursor":"…","monotonic_timestamp":1,"realtime_timestamp":2}'
)
_SSE_RANGE = _sse(
    "One event per entry, `data: <JournalEntry>` and a blank line; no `id:` on a range.",
    f"data: {_EXAMPLE_DATA}\n\n",
)
_SSE_FOLLOW = _sse(
    "One event per entry, `id: <cursor>` then `data: <JournalEntry>` and a blank line; "
    f"send the last id back as `Last-Event-ID` to resume. {_PING}",
    f"id: {_EXAMPLE_ID}\ndata: {_EXAMPLE_DATA}\n\n",
)
_SSE_TASK = _sse(
    "One event per line, `id: <cursor>` then `data: <TaskFileEvent>` and a blank line; "
    f"send the last id back as `Last-Event-ID` to resume. {_PING}",
    f'id: {_EXAMPLE_ID}\ndata: {{"fields":{{"AGENT_ID":"…","CONTAINER_ID":"…",'
    f'"EXECUTOR_ID":"…","FILE":"stdout","FRAMEWORK_ID":"…","MESSAGE":"hello"}}}}\n\n',
    data="TaskFileEvent",
)
_SSE_MERGED = _sse(
    "One event per entry, `id: <composite cursor>` (`m2.…`: every agent's position, on "
    "ranges too, so a client can follow on from a range's last id) then `data: "
    "<JournalEntry>` and a blank line; comments (`: …`) name agents that could not be read "
    f"and keep the stream open while idle. {_PING}",
    f"id: m2.eyJvIjoxLCJhIjp7fSwiYyI6e30sImQiOnt9fQ\ndata: {_EXAMPLE_DATA}\n\n",
)
_NDJSON = {"schema": {"$ref": _ENTRY}}

_SKIP_HEADERS: Json = {
    "X-Journal-Skip-Next": {
        "description": "Entries actually skipped forward; fewer than asked: the head was hit.",
        "schema": {"type": "integer"},
    },
    "X-Journal-Skip-Prev": {
        "description": "Entries actually stepped back; fewer than asked: the tail was hit.",
        "schema": {"type": "integer"},
    },
}
_NEGOTIATION = (
    "The body's format follows the `Accept` header: `text/plain` (the default, also for "
    "anything unrecognised), `application/json` (NDJSON: one JournalEntry object per line, "
    "not an array) or `text/event-stream`."
)


def _content(text: Json, sse: Json) -> Json:
    # Order matters to SDK generators (`common.render`): the default first.
    return {TEXT: {"schema": text}, JSON: _NDJSON, SSE: sse}


def responses(reading: Reading) -> Json:
    """The success responses of a reading (errors are added by the document's owner)."""
    empty = {"204": {"description": "No entry matched (or none has a MESSAGE, for text)."}}
    if reading in (Reading.V1_COUNT, Reading.MERGED_COUNT, Reading.V2_TASK_COUNT):
        count = {
            "type": "object",
            "properties": {"entries": {"type": "integer", "minimum": 0}},
            "required": ["entries"],
        }
        return {
            "200": {
                "description": "How many entries the range would send (with `grep`: matches).",
                "content": {JSON: {"schema": count}},
            }
        }
    if reading is Reading.V1_RANGE:
        return {
            "200": {
                "description": f"The entries, oldest first unless `read_reverse`. {_NEGOTIATION}",
                "headers": _SKIP_HEADERS,
                "content": _content(_TEXT, _SSE_RANGE),
            },
            **empty,
        }
    if reading is Reading.V1_STREAM:
        return {
            "200": {
                "description": (
                    "The entries, then new ones as they are written: the response does not "
                    "end while the client reads (nor after its token expires: it then ends, "
                    f"and an SSE client reconnects with a fresh token). {_NEGOTIATION}"
                ),
                "headers": {
                    **_SKIP_HEADERS,
                    "X-Accel-Buffering": {"schema": {"type": "string", "const": "no"}},
                },
                "content": _content(_TEXT, _SSE_FOLLOW),
            }
        }
    if reading in (Reading.V2_COMPONENT, Reading.V2_TASK_FILE):
        task = reading is Reading.V2_TASK_FILE
        return {
            "200": {
                "description": (
                    "With `Accept: text/event-stream` the read follows (new entries as they "
                    "are written, until the client leaves or its token expires); with any "
                    f"other Accept it is a finite range. {_NEGOTIATION}"
                    + (" As text, a task's lines are written as it wrote them." if task else "")
                ),
                "content": _content(_LINES if task else _TEXT, _SSE_TASK if task else _SSE_FOLLOW),
            },
            **empty,
        }
    if reading in (Reading.MERGED_RANGE, Reading.MERGED_STREAM):
        follow = reading is Reading.MERGED_STREAM
        merged = (
            "The journal entries of every task of the role or app the caller may read (the "
            "others left out), from every agent they run on, merged in time order"
        )
        answer: Json = {
            "200": {
                "description": (
                    f"{merged}; then new ones as they are written, tasks and agents joining and "
                    f"leaving as the cluster changes. {_NEGOTIATION}"
                    if follow
                    else f"{merged}. {_NEGOTIATION}"
                ),
                "content": _content(_TEXT, _SSE_MERGED),
            }
        }
        if follow:
            answer["200"]["headers"] = {
                "X-Accel-Buffering": {"schema": {"type": "string", "const": "no"}}
            }
        else:
            answer.update(empty)
        return answer
    if reading in (Reading.V1_DOWNLOAD, Reading.MERGED_DOWNLOAD):
        return {
            "200": {
                "description": (
                    "The range in the format `Accept` asks for (text by default), gzipped, "
                    "as a file to save."
                ),
                "headers": {
                    "Content-Disposition": {
                        "description": "`attachment; filename=<name>.log.gz`",
                        "schema": {"type": "string"},
                    }
                },
                "content": {"application/gzip": {"schema": {"type": "string", "format": "binary"}}},
            },
            **empty,
        }
    return {
        "200": {
            "description": "The field's distinct values in this journal.",
            "content": {JSON: {"schema": {"type": "array", "items": {"type": "string"}}}},
        },
        "204": {"description": "The field has no value in this journal."},
    }
