"""Merged role and app reads: one range or stream over many agents' node readers, in time
order, resumable by a composite cursor (issue 6).

A route builds the caller's `Planner` (which agents and containers, authorized), parses the
client's `Query`, and asks for `read_range` or `read_stream`; the rest is inside:

    plan     the caller's plan from the cluster state          fanin    one read per agent
    cursor   the composite cursor                               entry    entries, positions
    window   the k-way merge and the reorder window             feed     an agent's follow
    range    merged ranges                                      stream   merged streams
    read     starts, positions and the `skip_prev` tail, for both
"""

from app.merge.cursor import CompositeCursor, decode_cursor
from app.merge.fanin import MergePlan, Requester
from app.merge.plan import MergeScope, Planner, split_filters
from app.merge.read import Query, read_range, read_stream
from app.merge.stream import StreamOptions

__all__ = [
    "CompositeCursor",
    "MergePlan",
    "MergeScope",
    "Planner",
    "Query",
    "Requester",
    "StreamOptions",
    "decode_cursor",
    "read_range",
    "read_stream",
    "split_filters",
]
