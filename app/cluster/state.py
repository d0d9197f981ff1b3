"""The gateway's view of the cluster: a polled, cached `ClusterSnapshot` (Admin Router's
`cache.lua`, reference §3.3, with its test cases 27-38 as the behaviour to keep).

* A background task polls the leader every `poll_period` seconds, counted from the end of the
  last refresh of any kind. A failed poll keeps the last snapshot.
* A snapshot older than `soft_limit` is used with a warning; older than `hard_limit`, or none
  yet, is unusable: requests get 503 naming the last error.
* Refreshes are single-flight: at most one runs, and whoever needs one awaits the running one.
  Requests only wait when they cannot be answered otherwise (no usable snapshot, an unknown
  agent or task), at most `refresh_wait` (then 503 with Retry-After, the refresh going on),
  and they start at most one refresh per `refresh_min_interval`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import time
from collections.abc import Callable

from app.cluster.errors import InvalidId, MesosError, RefreshPending, ambiguous
from app.cluster.model import Agent, ClusterSnapshot, Master, Task
from app.cluster.protocols import StateFetcher
from app.cluster.scheduler import SchedulerNode, SchedulerUnknown, scheduler_node
from app.cluster.settings import ClusterSettings
from app.core.errors import NotFound, Unavailable

log = logging.getLogger(__name__)

AGENT_ID = re.compile(r"[0-9a-zA-Z-]{1,256}")  # Admin Router's location regex, bounded
MAX_TASK_QUERY = 1024
STALE_LOG_INTERVAL = 10.0


class ClusterState:
    """`ClusterStateSource`, `NodeResolver` and `TaskFinder` over one Mesos cluster.

    The owner calls `start()` once the event loop runs and `close()` before it stops; `mesos`
    (normally a `MesosClient`) and its HTTP client stay the owner's. `clock` is what ages the
    snapshot and spaces refreshes: tests pass a fake one instead of sleeping.
    """

    def __init__(
        self,
        settings: ClusterSettings,
        mesos: StateFetcher,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._mesos = mesos
        self._clock = clock
        self._current: tuple[ClusterSnapshot, float] | None = None  # snapshot, loaded at
        self._last_error = "no poll finished yet"
        self._last_attempt: float | None = None
        self._last_demand: float | None = None
        self._last_stale_log: float | None = None
        self._inflight: asyncio.Task[None] | None = None
        self._poller: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start polling; the first poll is under way when this returns, so requests that
        arrive before it ends join it instead of starting their own."""
        if self._poller is None:
            self._refresh_task()
            self._poller = asyncio.create_task(self._poll_forever(), name="mesos-state-poller")

    async def close(self) -> None:
        tasks = [t for t in (self._poller, self._inflight) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @property
    def last_error(self) -> str | None:
        return self._last_error or None

    def age(self) -> float | None:
        """Seconds since the current snapshot was loaded; None before the first."""
        return None if self._current is None else self._clock() - self._current[1]

    async def snapshot(self) -> ClusterSnapshot:
        snapshot = self._usable()
        if snapshot is None:
            await self._demand_refresh()
            snapshot = self._usable()
        if snapshot is None:
            raise Unavailable(self._why_unusable())
        return snapshot

    async def resolve_agent(self, agent_id: str) -> Agent:
        if not AGENT_ID.fullmatch(agent_id):
            raise InvalidId("agent id must match [0-9a-zA-Z-]+")
        agent = (await self.snapshot()).agent(agent_id)
        if agent is None and await self._demand_refresh():
            agent = (await self.snapshot()).agent(agent_id)
        if agent is None:
            raise NotFound(f"agent `{agent_id}` unknown")
        return agent

    async def resolve_leader(self) -> Master:
        return (await self.snapshot()).leader

    async def resolve_scheduler(self, name: str) -> SchedulerNode:
        """The node where framework `name`'s scheduler leads (`app.cluster.scheduler`);
        `SchedulerUnknown` (503) after one refresh, which a failover may have made stale."""
        try:
            return scheduler_node(await self.snapshot(), name)
        except SchedulerUnknown:
            if not await self._demand_refresh():
                raise
        return scheduler_node(await self.snapshot(), name)

    async def find_task(self, query: str) -> Task:
        """One task by exact id, name, or id fragment (`ClusterSnapshot.find_tasks`)."""
        if not query or len(query) > MAX_TASK_QUERY:
            raise InvalidId(f"a task name or id has 1 to {MAX_TASK_QUERY} characters")
        found = (await self.snapshot()).find_tasks(query)
        if not found and await self._demand_refresh():
            found = (await self.snapshot()).find_tasks(query)
        if not found:
            raise NotFound(f"task `{query}` not found")
        if len(found) > 1:
            raise ambiguous(query, tuple(task.id for task in found))
        return found[0]

    async def refresh(self) -> None:
        """Join the running refresh or start one now (ignores the rate limit)."""
        await asyncio.shield(self._refresh_task())

    def _usable(self) -> ClusterSnapshot | None:
        if self._current is None:
            return None
        snapshot, loaded_at = self._current
        now = self._clock()
        age = now - loaded_at
        if age > self._settings.hard_limit:
            return None
        if age > self._settings.soft_limit and (
            self._last_stale_log is None or now - self._last_stale_log >= STALE_LOG_INTERVAL
        ):
            self._last_stale_log = now
            log.warning("cluster state is stale (%.0f s old): %s", age, self._last_error)
        return snapshot

    def _why_unusable(self) -> str:
        age = self.age()
        if age is None:
            return f"cluster state not loaded yet: {self._last_error}"
        return f"cluster state is too old ({age:.0f} s): {self._last_error}"

    async def _demand_refresh(self) -> bool:
        """A refresh a request needs: join the running one, or start one unless the last
        request-triggered refresh began less than `refresh_min_interval` ago. True when the
        snapshot may have changed."""
        if self._inflight is None:
            now = self._clock()
            last = self._last_demand
            if last is not None and now - last < self._settings.refresh_min_interval:
                return False
            self._last_demand = now
        wait = self._settings.refresh_wait
        try:
            # The shield keeps the refresh going for everyone else when this request stops
            # waiting (issue 12 §4: a stalled master must not pin the gateway's connections).
            await asyncio.wait_for(asyncio.shield(self._refresh_task()), wait)
        except TimeoutError:
            raise RefreshPending(
                f"the Mesos master has not answered a state refresh within {wait:g} s "
                "(mesos_refresh_wait); it goes on: retry shortly",
                retry_after=max(1, math.ceil(wait)),
            ) from None
        return True

    def _refresh_task(self) -> asyncio.Task[None]:
        if self._inflight is None:
            self._inflight = asyncio.create_task(self._refresh_once(), name="mesos-state-refresh")
        return self._inflight

    async def _refresh_once(self) -> None:
        try:
            snapshot = await self._mesos.fetch()
        except MesosError as exc:
            self._last_error = str(exc)
            log.warning("cluster state refresh failed: %s", exc)
        except Exception as exc:
            self._last_error = f"internal error ({type(exc).__name__})"
            log.exception("cluster state refresh failed")
        else:
            if self._current is None or self._last_error:
                log.info(
                    "cluster state loaded from %s: %d agents, %d tasks",
                    self._mesos.leader_url,
                    len(snapshot.agents),
                    len(snapshot.all_tasks),
                )
            self._current = (snapshot, self._clock())
            self._last_error = ""
        finally:
            self._last_attempt = self._clock()
            self._inflight = None

    async def _poll_forever(self) -> None:
        period = self._settings.poll_period
        while True:
            if self._last_attempt is not None:
                delay = self._last_attempt + period - self._clock()
                if delay > 0:
                    await asyncio.sleep(delay)
                    continue
            await asyncio.shield(self._refresh_task())
