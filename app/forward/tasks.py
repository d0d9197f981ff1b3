"""The app id and role of the task every forwarded line comes from, out of the cluster state
the gateway serves (`/mesos/master/state`, where `logway logs task` finds tasks too), so that
every record of a task carries them, not only the lines whose writer put labels in the entry.

Looked up here, by the entry's TASK_ID, rather than added by the gateway: the gateway relays a
node's stream as the node's bytes (adding a field means parsing and re-encoding every entry
in the process that serves everyone), while the forwarder parses each entry anyway, and one
lookup serves every kind of source (a node, the cluster, a task, a merged app or role). What
the forwarder may see is unchanged: the gateway filters the state to the caller's tasks, and
only lines the gateway already sent get labels.

The state is read again only when a batch holds a task it does not know (a task started since),
at most once per `REFRESH_MIN_INTERVAL`; a task's app id and role never change.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence

import httpx

from app.cluster.index import build_snapshot
from app.forward.record import Record
from app.forward.source import SourceFailed

STATE_PATH = "/mesos/master/state"
REFRESH_MIN_INTERVAL = 5.0
MAX_KNOWN = 100_000  # tasks remembered across refreshes (completed ones leave the state)

Fetch = Callable[[str], Awaitable[bytes]]
Note = Callable[[str], None]
Labels = tuple[str | None, str | None]  # (app id, role)


class TaskLabels:
    def __init__(
        self,
        fetch: Fetch,
        *,
        note: Note,
        min_interval: float = REFRESH_MIN_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self._note = note
        self._min_interval = min_interval
        self._clock = clock
        self._known: dict[str, Labels] = {}
        self._loaded_at: float | None = None

    async def label(self, records: Sequence[Record]) -> list[Record]:
        """`records`, those of a task the state knows with its app id and role."""
        known = self._known
        unknown = False
        for record in records:
            task_id = record.fields.get("TASK_ID")
            if isinstance(task_id, str) and task_id not in known:
                unknown = True
                break
        if unknown and self._due():
            await self._refresh()
            known = self._known
        out: list[Record] = []
        for record in records:
            task_id = record.fields.get("TASK_ID")
            labels = known.get(task_id) if isinstance(task_id, str) else None
            out.append(record if labels is None else record.labelled(*labels))
        return out

    def _due(self) -> bool:
        return self._loaded_at is None or self._clock() - self._loaded_at >= self._min_interval

    async def _refresh(self) -> None:
        self._loaded_at = self._clock()
        try:
            body = await self._fetch(STATE_PATH)
            # Only the tasks are read: the reader address parts of the snapshot are unused.
            snapshot = build_snapshot(body, reader_scheme="http", reader_port=1)
        except (SourceFailed, httpx.HTTPError, ValueError) as exc:  # BadState: a ValueError
            self._note(f"no app ids and roles from {STATE_PATH} for now: {exc}")
            return
        fresh: dict[str, Labels] = {t.id: (t.app_id, t.role) for t in snapshot.all_tasks}
        if len(self._known) + len(fresh) > MAX_KNOWN:
            self._known = fresh
        else:
            self._known = {**self._known, **fresh}
