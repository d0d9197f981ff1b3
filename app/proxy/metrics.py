"""Counters the gateway can expose: plain integers, no metrics library.

Updated only from the event loop, so no locking.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

PREFIX = "logway_proxy"


# Log formats whose entries the relay can count: one line per entry, or one `data:` per event.
LINE_FORMATS = frozenset({"text/plain", "application/json"})
SSE = "text/event-stream"


class EntryCounter:
    """Counts the log entries in a relayed body as its chunks go by, chunk boundaries included:
    a newline per entry in text and NDJSON, a `data:` field per event in an event stream
    (comments such as heartbeats have none)."""

    def __init__(self, marker: bytes) -> None:
        self._marker = marker
        self._tail = b"\n" if marker.startswith(b"\n") else b""

    @classmethod
    def for_media_type(cls, media_type: str) -> EntryCounter | None:
        if media_type == SSE:
            return cls(b"\ndata:")
        if media_type in LINE_FORMATS:
            return cls(b"\n")
        return None  # a gzip download, an error body: not counted

    def feed(self, chunk: bytes) -> int:
        if len(self._marker) == 1:
            return chunk.count(self._marker)
        window = self._tail + chunk
        found = window.count(self._marker) - self._tail.count(self._marker)
        self._tail = window[-(len(self._marker) - 1) :]
        return found


@dataclass
class ProxyMetrics:
    bytes_relayed: int = 0
    entries_relayed: int = 0
    active_streams: int = 0
    streams_total: int = 0
    resumes: int = 0
    stalled_clients: int = 0
    # Shared follows (app/proxy/share.py): upstream streams open, callers following them.
    shared_upstreams: int = 0
    shared_followers: int = 0
    upstream_errors: Counter[str] = field(default_factory=Counter)
    # Merged role/app reads (app/merge/): their streams, the entries they merged,
    # entries released behind later ones, and agents that became unavailable mid-stream.
    merged_active_streams: int = 0
    merged_streams_total: int = 0
    merged_entries: int = 0
    merged_late_entries: int = 0
    merged_source_failures: int = 0

    def upstream_error(self, kind: str) -> None:
        self.upstream_errors[kind] += 1

    def prometheus(self) -> str:
        """Prometheus text exposition (version 0.0.4)."""
        lines = [
            f"# TYPE {PREFIX}_bytes_relayed_total counter",
            f"{PREFIX}_bytes_relayed_total {self.bytes_relayed}",
            f"# TYPE {PREFIX}_entries_relayed_total counter",
            f"{PREFIX}_entries_relayed_total {self.entries_relayed}",
            f"# TYPE {PREFIX}_active_streams gauge",
            f"{PREFIX}_active_streams {self.active_streams}",
            f"# TYPE {PREFIX}_streams_total counter",
            f"{PREFIX}_streams_total {self.streams_total}",
            f"# TYPE {PREFIX}_resumes_total counter",
            f"{PREFIX}_resumes_total {self.resumes}",
            f"# TYPE {PREFIX}_stalled_clients_total counter",
            f"{PREFIX}_stalled_clients_total {self.stalled_clients}",
            f"# TYPE {PREFIX}_shared_upstreams gauge",
            f"{PREFIX}_shared_upstreams {self.shared_upstreams}",
            f"# TYPE {PREFIX}_shared_followers gauge",
            f"{PREFIX}_shared_followers {self.shared_followers}",
            f"# TYPE {PREFIX}_upstream_errors_total counter",
        ]
        lines += [
            f'{PREFIX}_upstream_errors_total{{kind="{kind}"}} {count}'
            for kind, count in sorted(self.upstream_errors.items())
        ]
        lines += [
            f"# TYPE {PREFIX}_merged_active_streams gauge",
            f"{PREFIX}_merged_active_streams {self.merged_active_streams}",
            f"# TYPE {PREFIX}_merged_streams_total counter",
            f"{PREFIX}_merged_streams_total {self.merged_streams_total}",
            f"# TYPE {PREFIX}_merged_entries_total counter",
            f"{PREFIX}_merged_entries_total {self.merged_entries}",
            f"# TYPE {PREFIX}_merged_late_entries_total counter",
            f"{PREFIX}_merged_late_entries_total {self.merged_late_entries}",
            f"# TYPE {PREFIX}_merged_source_failures_total counter",
            f"{PREFIX}_merged_source_failures_total {self.merged_source_failures}",
        ]
        return "\n".join(lines) + "\n"


__all__ = ["EntryCounter", "ProxyMetrics"]
