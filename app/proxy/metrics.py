"""Counters the gateway can expose: plain integers, no metrics library.

Updated only from the event loop, so no locking.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

PREFIX = "logway_proxy"


@dataclass
class ProxyMetrics:
    bytes_relayed: int = 0
    active_streams: int = 0
    streams_total: int = 0
    resumes: int = 0
    upstream_errors: Counter[str] = field(default_factory=Counter)

    def upstream_error(self, kind: str) -> None:
        self.upstream_errors[kind] += 1

    def prometheus(self) -> str:
        """Prometheus text exposition (version 0.0.4)."""
        lines = [
            f"# TYPE {PREFIX}_bytes_relayed_total counter",
            f"{PREFIX}_bytes_relayed_total {self.bytes_relayed}",
            f"# TYPE {PREFIX}_active_streams gauge",
            f"{PREFIX}_active_streams {self.active_streams}",
            f"# TYPE {PREFIX}_streams_total counter",
            f"{PREFIX}_streams_total {self.streams_total}",
            f"# TYPE {PREFIX}_resumes_total counter",
            f"{PREFIX}_resumes_total {self.resumes}",
            f"# TYPE {PREFIX}_upstream_errors_total counter",
        ]
        lines += [
            f'{PREFIX}_upstream_errors_total{{kind="{kind}"}} {count}'
            for kind, count in sorted(self.upstream_errors.items())
        ]
        return "\n".join(lines) + "\n"


__all__ = ["ProxyMetrics"]
