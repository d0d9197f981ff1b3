"""What a pipeline reports: entries, rate, lag, the position, each sink's errors; as the
status document `logway forward status` reads, and as Prometheus metrics."""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import orjson

from app.forward.record import Record

RATE_WINDOW = 10.0  # seconds over which entries/s is averaged


@dataclass
class SinkStats:
    errors: int = 0
    last_error: str | None = None
    last_error_at: float | None = None
    retrying: bool = False


@dataclass
class PipelineStats:
    name: str
    source: str
    sink_names: Sequence[str]
    entries: int = 0
    batches: int = 0
    last_realtime: int | None = None  # µs, of the newest acknowledged entry
    saved_at: float | None = None
    idle: bool = False  # nothing waiting: caught up with the source
    queued: int = 0
    started: float = field(default_factory=time.time)
    sinks: dict[str, SinkStats] = field(init=False)
    _window: deque[tuple[float, int]] = field(init=False, default_factory=deque)

    def __post_init__(self) -> None:
        self.sinks = {name: SinkStats() for name in self.sink_names}

    def acknowledged(self, records: Sequence[Record], *, queued: int) -> None:
        now = time.time()
        self.entries += len(records)
        self.batches += 1
        self.saved_at = now
        self.queued = queued
        if records:
            self.last_realtime = records[-1].realtime
        self._window.append((now, self.entries))
        while self._window and self._window[0][0] < now - RATE_WINDOW:
            self._window.popleft()

    def sink_error(self, name: str, message: str) -> None:
        sink = self.sinks[name]
        sink.errors += 1
        sink.last_error = message
        sink.last_error_at = time.time()
        sink.retrying = True

    def sink_ok(self, name: str) -> None:
        self.sinks[name].retrying = False

    def rate(self) -> float:
        if len(self._window) < 2:
            return 0.0
        (t0, n0), (t1, n1) = self._window[0], self._window[-1]
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0

    def lag(self) -> float | None:
        """Seconds between now and the newest acknowledged entry while entries wait; 0 when
        caught up; None before the first entry."""
        if self.idle and self.queued == 0:
            return 0.0
        if self.last_realtime is None:
            return None
        return max(0.0, time.time() - self.last_realtime / 1e6)

    def document(self, positions: Mapping[str, str]) -> bytes:
        return orjson.dumps(
            {
                "pipeline": self.name,
                "source": self.source,
                "pid": os.getpid(),
                "updated_at": time.time(),
                "started_at": self.started,
                "entries": self.entries,
                "batches": self.batches,
                "entries_per_second": round(self.rate(), 1),
                "lag_seconds": self.lag(),
                "position": dict(positions),
                "position_saved_at": self.saved_at,
                "sinks": {
                    name: {
                        "errors": s.errors,
                        "retrying": s.retrying,
                        "last_error": s.last_error,
                        "last_error_at": s.last_error_at,
                    }
                    for name, s in self.sinks.items()
                },
            }
        )


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def prometheus(pipelines: Sequence[PipelineStats]) -> bytes:
    """The Prometheus text exposition format (version 0.0.4)."""
    lines = [
        "# HELP logway_forward_entries_total Entries every sink acknowledged.",
        "# TYPE logway_forward_entries_total counter",
    ]
    for p in pipelines:
        lines.append(f'logway_forward_entries_total{{pipeline="{_label(p.name)}"}} {p.entries}')
    lines += [
        "# HELP logway_forward_batches_total Batches acknowledged and saved.",
        "# TYPE logway_forward_batches_total counter",
    ]
    for p in pipelines:
        lines.append(f'logway_forward_batches_total{{pipeline="{_label(p.name)}"}} {p.batches}')
    lines += [
        "# HELP logway_forward_lag_seconds Age of the newest acknowledged entry while "
        "entries wait (0 when caught up).",
        "# TYPE logway_forward_lag_seconds gauge",
    ]
    for p in pipelines:
        lag = p.lag()
        if lag is not None:
            lines.append(f'logway_forward_lag_seconds{{pipeline="{_label(p.name)}"}} {lag:.3f}')
    lines += [
        "# HELP logway_forward_sink_errors_total Failed sends, by sink.",
        "# TYPE logway_forward_sink_errors_total counter",
    ]
    for p in pipelines:
        for name, s in p.sinks.items():
            lines.append(
                f'logway_forward_sink_errors_total{{pipeline="{_label(p.name)}",'
                f'sink="{_label(name)}"}} {s.errors}'
            )
    return ("\n".join(lines) + "\n").encode()
