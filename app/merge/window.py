"""The merge itself: many agents' entries, each agent's in its journal order, into one
sequence ordered by `realtime_timestamp`.

Both merges look only at the head of each agent's queue (a k-way merge), so every agent's
entries keep their journal order whatever their timestamps say: an agent's position in the
composite cursor only ever moves forward, which is what makes resuming exact. Ties are
broken by agent id; within one agent, journal order decides.

* `merge_batches`: ranges, where every source is finite and can be waited for.
* `Reorderer`: streams, where a source may stay silent for any time. The head entry is
  released as soon as every live source has something queued (nothing earlier can come from
  a source whose next entry is already later), and otherwise once it has waited `window`
  seconds since it arrived: a bounded delay, never an unbounded wait for a silent agent. An
  entry that arrives after later ones were released (a source that was away, or that joined
  with its backlog) is released at once, out of order, and counted as late: never dropped.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import AsyncIterator, Sequence

from app.merge.entry import MergedEntry

BatchSource = AsyncIterator[list[MergedEntry]]


async def merge_batches(sources: Sequence[BatchSource]) -> AsyncIterator[list[MergedEntry]]:
    """K-way merge of finite sources, each yielding its entries in batches. Sources should
    come sorted by agent id; their batches are pulled only when their queue runs dry."""
    queues: list[deque[MergedEntry]] = [deque() for _ in sources]
    heap: list[tuple[int, str, int]] = []

    async def refill(index: int) -> None:
        async for batch in sources[index]:
            if batch:
                queues[index].extend(batch)
                head = batch[0]
                heapq.heappush(heap, (head.ts, head.agent, index))
                return

    for index in range(len(sources)):
        await refill(index)
    while heap:
        out: list[MergedEntry] = []
        dry: int | None = None
        while heap:
            index = heap[0][2]
            queue = queues[index]
            out.append(queue.popleft())
            if queue:
                head = queue[0]
                heapq.heapreplace(heap, (head.ts, head.agent, index))
            else:
                heapq.heappop(heap)
                dry = index
                break
        yield out
        if dry is not None:
            await refill(dry)


class _Lane:
    __slots__ = ("agent", "gone", "live", "queue")

    def __init__(self, agent: str) -> None:
        self.agent = agent
        self.queue: deque[MergedEntry] = deque()
        self.live = True  # connected: the others wait (up to the window) for its entries
        self.gone = False  # left the stream: drained, then forgotten


class Reorderer:
    """The streaming merge. Not thread-safe; all calls from one event loop."""

    def __init__(self, window: float) -> None:
        self.window = window
        self.late = 0  # entries released behind a later one
        self.last_ts = 0
        self._lanes: dict[str, _Lane] = {}
        self._heap: list[tuple[int, str, _Lane]] = []  # one per non-empty lane
        self._waiting = 0  # live lanes with nothing queued

    def add(self, agent: str) -> None:
        lane = self._lanes.get(agent)
        if lane is None:
            self._lanes[agent] = lane = _Lane(agent)
            self._waiting += 1
        elif lane.gone:
            lane.gone = False
            self.set_live(agent, True)

    def remove(self, agent: str) -> None:
        """The agent left: what it queued is still released; nobody waits for more."""
        lane = self._lanes.get(agent)
        if lane is None:
            return
        self.set_live(agent, False)
        lane.gone = True
        if not lane.queue:
            del self._lanes[agent]

    def set_live(self, agent: str, live: bool) -> None:
        """A source that is away (reconnecting) is not waited for."""
        lane = self._lanes.get(agent)
        if lane is None or lane.gone or lane.live == live:
            return
        lane.live = live
        if not lane.queue:
            self._waiting += 1 if live else -1

    def queued(self, agent: str) -> int:
        lane = self._lanes.get(agent)
        return len(lane.queue) if lane is not None else 0

    def push(self, agent: str, entries: list[MergedEntry]) -> None:
        """An agent's entries in its journal order, each stamped with its arrival time."""
        lane = self._lanes.get(agent)
        if lane is None or lane.gone or not entries:
            return
        if not lane.queue:
            head = entries[0]
            heapq.heappush(self._heap, (head.ts, agent, lane))
            if lane.live:
                self._waiting -= 1
        lane.queue.extend(entries)

    def deadline(self) -> float | None:
        """When the head entry may be released for having waited the window."""
        if not self._heap:
            return None
        return self._heap[0][2].queue[0].arrived + self.window

    def pop_ready(self, now: float) -> list[MergedEntry]:
        out: list[MergedEntry] = []
        heap = self._heap
        window = self.window
        while heap:
            lane = heap[0][2]
            queue = lane.queue
            head = queue[0]
            if self._waiting > 0 and head.arrived + window > now:
                break
            queue.popleft()
            out.append(head)
            if head.ts < self.last_ts:
                self.late += 1
            else:
                self.last_ts = head.ts
            if queue:
                following = queue[0]
                heapq.heapreplace(heap, (following.ts, lane.agent, lane))
            else:
                heapq.heappop(heap)
                if lane.gone:
                    del self._lanes[lane.agent]
                elif lane.live:
                    self._waiting += 1
        return out


__all__ = ["BatchSource", "Reorderer", "merge_batches"]
