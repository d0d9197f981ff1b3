"""The IAM store's seam under the SQL: one `Engine` interface (db.py for SQLite, pg.py for
PostgreSQL), handing a DB-API-shaped `Connection` to functions that run inside one
transaction. The store's SQL is written once, in the dialect both engines (and CockroachDB)
accept: `?` placeholders (pg.py translates them), `ON CONFLICT DO NOTHING`, `NULLS FIRST`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

# Topics of a change, as the change signal carries them (pg.py NOTIFY payloads).
TOPIC_IAM = "iam"  # users, groups, memberships, ACLs
TOPIC_KEYS = "keys"  # the signing key ring
TOPIC_RESYNC = "resync"  # the signal was lost for a while: anything may have changed

ChangeListener = Callable[[str], None]


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Cursor: ...


class Engine(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def read(self, fn: Callable[[Connection], T]) -> T:
        """`fn(conn)` inside one read transaction."""
        ...

    async def write(self, fn: Callable[[Connection], T], *, topic: str = TOPIC_IAM) -> T:
        """`fn(conn)` inside one write transaction, serialized with every other write; a
        `LogwayError` from `fn` rolls it back. Every replica hears `topic` once it commits."""
        ...

    def generation(self) -> int:
        """Changes whenever the store may have changed (cheap, never raises)."""
        ...

    def changes(self, topic: str) -> int:
        """A counter of the changes on `topic` seen so far (any value change means reload)."""
        ...

    def subscribe(self, listener: ChangeListener) -> Callable[[], None]:
        """`listener(topic)` on the caller's event loop after each change; returns the
        unsubscribe function."""
        ...
