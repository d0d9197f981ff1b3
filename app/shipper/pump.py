"""Move bytes from pipes to a sink as lines, in order per pipe, until the pipes are done.

One thread, one poll loop: every chunk read is cut into lines and written before the next
poll, so a slow sink (journald busy) stops the reads and the pipes fill up — the task blocks
on its own writes instead of the shipper buffering without bound.
"""

from __future__ import annotations

import os
import selectors
import time
from collections.abc import Mapping

from app.shipper.lines import LINE_MAX, LineSplitter
from app.shipper.sink import LineSink, Stream

READ_SIZE = 64 * 1024
# After the task has exited, its pipes can still be held open by a process it left behind
# (a daemonized grandchild). What the task itself wrote is already in the pipe buffers and
# reads at once; beyond that we follow stragglers only while they keep talking, and not forever.
DRAIN_IDLE = 2.0
DRAIN_MAX = 30.0


class Pump:
    def __init__(
        self,
        sink: LineSink,
        sources: Mapping[int, Stream],
        *,
        line_max: int = LINE_MAX,
        read_size: int = READ_SIZE,
    ) -> None:
        self._sink = sink
        self._sources = dict(sources)
        self._splitters = {fd: LineSplitter(line_max=line_max) for fd in sources}
        self._read_size = read_size

    def run(
        self,
        *,
        exited: int | None = None,
        stop: int | None = None,
        drain_idle: float = DRAIN_IDLE,
        drain_max: float = DRAIN_MAX,
    ) -> None:
        """Pump until every source is at EOF, or `stop` is readable, or the drain ends.

        `exited` turns readable when the writer is gone (a pidfd): from then on, reading ends
        after `drain_idle` seconds without data or `drain_max` seconds in all. Unfinished lines
        are written before returning, whichever way the pumping ended.
        """
        # poll(2), not epoll: stdin may be a regular file, which epoll refuses.
        with selectors.PollSelector() as selector:
            for fd in [*self._sources, exited, stop]:
                if fd is not None:
                    selector.register(fd, selectors.EVENT_READ)
            open_sources = len(self._sources)
            drain: _Drain | None = None
            while open_sources:
                timeout = drain.timeout() if drain else None
                if timeout is not None and timeout <= 0:
                    break
                for key, _ in selector.select(timeout):
                    if key.fd == stop:
                        open_sources = 0
                        break
                    if key.fd == exited:
                        selector.unregister(key.fd)
                        drain = _Drain(idle=drain_idle, limit=drain_max)
                    elif self._read(key.fd):
                        if drain:
                            drain.data()
                    else:
                        selector.unregister(key.fd)
                        open_sources -= 1
        self._finish()

    def _read(self, fd: int) -> bool:
        """Ship what one read brings; False at EOF."""
        data = os.read(fd, self._read_size)
        if not data:
            return False
        stream = self._sources[fd]
        write = self._sink.write
        for line, end in self._splitters[fd].feed(data):
            write(stream, line, end)
        return True

    def _finish(self) -> None:
        for fd, splitter in self._splitters.items():
            for line, end in splitter.finish():
                self._sink.write(self._sources[fd], line, end)


class _Drain:
    """The deadlines that bound reading once the writer is gone."""

    def __init__(self, *, idle: float, limit: float) -> None:
        now = time.monotonic()
        self._idle = idle
        self._idle_end = now + idle
        self._end = now + limit

    def data(self) -> None:
        self._idle_end = time.monotonic() + self._idle

    def timeout(self) -> float:
        return min(self._idle_end, self._end) - time.monotonic()
