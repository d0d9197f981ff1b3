"""Open streams end when their caller's access ends (issue 12 §1): the token's expiry, the
uid's deletion, the revocation of the grants the stream was authorized by.

One `AccessWatcher` per gateway process holds every open stream's `StreamAccess` (its uid,
when its token stops being accepted, and how to decide its authorization again). It wakes at
the nearest expiry and every `period` seconds; it asks each stream again only when the IAM's
`ChangeSignal` moved (the embedded store's generation, a PostgreSQL NOTIFY counter, a remote
IAM's cache TTL), never per stream on a timer. A push signal may also call `changed()` to
wake it at once. With `known` (the authenticator's uid check, cached on the same signal) a
stream whose uid no longer exists ends too, whatever the grants say: a remote IAM's policy
query may not tell a deleted uid from one without grants, or may still allow it.

A stream asks for its lease when it starts, races its body against `StreamAccess.ended()`
and closes the lease in a `finally`. What it says when it ends: `final_event(reason)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from app.core.errors import LogwayError

log = logging.getLogger(__name__)

TOKEN_EXPIRED = "token expired"  # noqa: S105 (a reason, not a credential)
ACCESS_REVOKED = "access revoked"
# The SSE event type of a stream's last event; `data` is the reason. A named event: browsers'
# `onmessage` ignores it, the dcos CLI prints its data, `logway logs` exits 3 on it.
ACCESS_ENDED_EVENT = "access-ended"
DEFAULT_PERIOD = 2.0

# Decides the stream's authorization again: True while it still holds.
Recheck = Callable[[], Awaitable[bool]]
# Whether a uid still exists at the IAM.
KnownUid = Callable[[str], Awaitable[bool]]


class ChangeSignal(Protocol):
    """Whatever tells that grants may have changed: a value that changes when they did.
    Called on the event loop, so it must be cheap and never block."""

    def generation(self) -> int: ...


class TtlSignal:
    """A remote IAM has no change signal: its decisions are cached for `ttl` seconds, so
    they may have changed each time that much time has passed."""

    def __init__(self, ttl: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        if ttl <= 0:
            raise ValueError("ttl must be > 0")
        self._ttl = ttl
        self._clock = clock

    def generation(self) -> int:
        return int(self._clock() // self._ttl)


def final_event(reason: str) -> bytes:
    """The last bytes of an SSE stream whose access ended."""
    return f"event: {ACCESS_ENDED_EVENT}\ndata: {reason}\n\n".encode()


class StreamAccess:
    """One open stream's lease on its caller's access."""

    def __init__(
        self, watcher: AccessWatcher, uid: str, expires_at: float | None, recheck: Recheck
    ) -> None:
        self.uid = uid
        self.expires_at = expires_at  # the token's exp + leeway (epoch seconds); None: never
        self.recheck = recheck
        self.reason: str | None = None
        self._watcher = watcher
        self._ended = asyncio.Event()

    async def ended(self) -> str:
        """Returns the reason once the caller's access has ended."""
        await self._ended.wait()
        assert self.reason is not None
        return self.reason

    def end(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
            self._ended.set()
            self._watcher.release(self)

    def close(self) -> None:
        """The stream ended by itself (or the client left): forget it."""
        self._watcher.release(self)


class AccessWatcher:
    """See the module's docstring. `run()` is the watcher's task, started in the lifespan."""

    def __init__(
        self,
        signal: ChangeSignal,
        *,
        period: float = DEFAULT_PERIOD,
        known: KnownUid | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if period <= 0:
            raise ValueError("period must be > 0")
        self._signal = signal
        self._known = known
        self._period = period
        self._clock = clock
        self._streams: set[StreamAccess] = set()
        self._wake = asyncio.Event()
        self._generation: int | None = None
        self._epoch = 0
        self._until = 0.0  # when the current wait ends (the clock's time); 0: not waiting

    def epoch(self) -> int:
        """Counts the changes seen: a cache of decisions keyed on it is dropped on each."""
        return self._epoch

    def register(self, uid: str, expires_at: float | None, recheck: Recheck) -> StreamAccess:
        access = StreamAccess(self, uid, expires_at, recheck)
        self._streams.add(access)
        if expires_at is not None and expires_at < self._until:
            self._wake.set()  # the nearest expiry: wake sooner (one wake per stream would
            # check every stream each time, quadratic in a ramp of thousands of follows)
        return access

    def release(self, access: StreamAccess) -> None:
        self._streams.discard(access)

    def changed(self) -> None:
        """A push signal (e.g. PostgreSQL NOTIFY) says the store changed: look now."""
        self._wake.set()

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    async def run(self) -> None:
        self._generation = self._read_signal()
        while True:
            wait = self._next_wait()
            self._until = self._clock() + wait
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.check()
            except Exception:  # a bug must not stop every stream's watch
                log.exception("access watcher check failed")

    async def check(self) -> None:
        """End expired streams; if the signal moved, decide every other one again."""
        now = self._clock()
        for access in list(self._streams):
            if access.expires_at is not None and now >= access.expires_at:
                log.info("stream of %r ended: %s", access.uid, TOKEN_EXPIRED)
                access.end(TOKEN_EXPIRED)
        generation = self._read_signal()
        if generation == self._generation:
            return
        self._generation = generation
        self._epoch += 1
        for access in list(self._streams):
            if access.reason is None and not await self._still_allowed(access):
                log.info("stream of %r ended: %s", access.uid, ACCESS_REVOKED)
                access.end(ACCESS_REVOKED)

    def _next_wait(self) -> float:
        wait = self._period
        expiries = [a.expires_at for a in self._streams if a.expires_at is not None]
        if expiries:
            wait = min(wait, max(0.0, min(expiries) - self._clock()))
        return wait

    def _read_signal(self) -> int | None:
        try:
            return self._signal.generation()
        except Exception:  # a signal that fails says nothing: count it as a change
            log.exception("IAM change signal failed")
            return None

    async def _still_allowed(self, access: StreamAccess) -> bool:
        try:
            if self._known is not None and not await self._known(access.uid):
                return False
            return await access.recheck()
        except LogwayError as exc:
            # The IAM cannot decide right now (503 to new requests): the stream keeps going
            # and is decided again at the next change; a momentary outage ends nothing.
            log.warning("stream of %r not re-authorized now: %s", access.uid, exc.message)
            self._generation = None  # look again at the next tick
            return True
        except Exception:  # a bug: keep the stream, and say so in the log
            log.exception("stream of %r: re-authorization failed", access.uid)
            return True


__all__ = [
    "ACCESS_ENDED_EVENT",
    "ACCESS_REVOKED",
    "DEFAULT_PERIOD",
    "TOKEN_EXPIRED",
    "AccessWatcher",
    "ChangeSignal",
    "KnownUid",
    "Recheck",
    "StreamAccess",
    "TtlSignal",
    "final_event",
]
