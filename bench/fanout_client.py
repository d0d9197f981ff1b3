"""The fan-out section's followers: bare asyncio protocols in a few client processes.

The client shares the two cores with the gateway and the node readers, so a follower does
the least it can: one protocol object per connection (no stream reader, no task), which
finds the bench's marker in the bytes as they arrive and notes when each mark came.
Every process binds its connections to its own 127.62.x.1 source address, so ephemeral
ports never run out whatever the count.

The parent drives each process through a pipe: `connect` (reply: connected, failures),
`report` (reply: the marks seen: follower, seq, arrival ns, duplicates), `close`.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import resource
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import cast

CONNECT_BATCH = 50
HEAD_TIMEOUT = 60.0
CLOSE_TIMEOUT = 10.0
SOURCE_NET = "127.62"


@dataclass(frozen=True, slots=True)
class Mark:
    follower: int  # index over every follower of the run
    seq: int
    arrived_ns: int


class Follow(asyncio.Protocol):
    """One SSE follower: finds `<marker> <seq> <sent_ns>` in whatever arrives."""

    def __init__(self, request: bytes, marker: bytes, head: asyncio.Future[bool]) -> None:
        self._request = request
        self._marker = marker
        self._head = head
        self._head_bytes = b""
        self.status = b""  # the response's status line
        self._carry = b""
        self.seen: dict[int, int] = {}  # seq -> arrival ns
        self.duplicates = 0
        self.closed = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self.transport.write(self._request)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self._head.done():
            self._head.set_result(False)

    def data_received(self, data: bytes) -> None:
        now = time.time_ns()
        if not self._head.done():
            self._head_bytes += data
            end = self._head_bytes.find(b"\r\n\r\n")
            if end < 0:
                return
            self.status = self._head_bytes.split(b"\r\n", 1)[0]
            self._head.set_result(self.status.startswith(b"HTTP/1.1 200"))
            data, self._head_bytes = self._head_bytes[end + 4 :], b""
        buf = self._carry + data if self._carry else data
        marker = self._marker
        at = buf.find(marker)
        if at < 0:
            self._carry = buf[-(len(marker) - 1) :]
            return
        while at >= 0:
            end = buf.find(b'"', at)
            if end < 0:  # the mark is cut: wait for the rest
                self._carry = buf[at:]
                return
            seq, _, _sent = buf[at + len(marker) : end].strip().partition(b" ")
            number = int(seq)
            if number in self.seen:
                self.duplicates += 1
            else:
                self.seen[number] = now
            at = buf.find(marker, end)
        self._carry = buf[-(len(marker) - 1) :]


async def _open(
    request: bytes, marker: bytes, host: str, port: int, source: str
) -> tuple[Follow | None, asyncio.Transport | None, str]:
    """(follower, transport, "") or (None, None, why it failed)."""
    loop = asyncio.get_running_loop()
    head: asyncio.Future[bool] = loop.create_future()
    try:
        transport, follow = await loop.create_connection(
            lambda: Follow(request, marker, head), host, port, local_addr=(source, 0)
        )
        ok = await asyncio.wait_for(head, HEAD_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        return None, None, type(exc).__name__
    if not ok:
        transport.close()
        return None, None, follow.status.decode(errors="replace") or "closed before a status"
    return follow, transport, ""


def _request(host: str, port: int, path: str, token: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: token={token}\r\n"
        "Accept: text/event-stream\r\n\r\n"
    ).encode()


async def _serve(
    pipe: Connection,
    host: str,
    port: int,
    token: str,
    paths: Sequence[str],
    first: int,
    marker: bytes,
    source: str,
) -> None:
    follows: list[Follow | None] = []
    transports: list[asyncio.Transport] = []
    failures: Counter[str] = Counter()
    loop = asyncio.get_running_loop()
    while True:
        command = await loop.run_in_executor(None, pipe.recv)
        if command == "connect":
            for start in range(0, len(paths), CONNECT_BATCH):
                batch = paths[start : start + CONNECT_BATCH]
                opened = await asyncio.gather(
                    *(
                        _open(_request(host, port, p, token), marker, host, port, source)
                        for p in batch
                    )
                )
                for follow, transport, why in opened:
                    follows.append(follow)
                    if transport is not None:
                        transports.append(transport)
                    if why:
                        failures[why] += 1
            failed = sum(f is None for f in follows)
            pipe.send((len(follows) - failed, failed, failures))
        elif command == "report":
            marks = [
                Mark(first + i, seq, ns)
                for i, f in enumerate(follows)
                if f is not None
                for seq, ns in f.seen.items()
            ]
            duplicates = sum(f.duplicates for f in follows if f is not None)
            dropped = sum(f.closed for f in follows if f is not None)
            pipe.send((marks, duplicates, dropped))
        elif command == "close":
            for transport in transports:
                transport.close()
            await asyncio.sleep(0.5)
            pipe.send("closed")
            return


def _worker(
    pipe: Connection,
    host: str,
    port: int,
    token: str,
    paths: Sequence[str],
    first: int,
    marker: bytes,
    source: str,
) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    asyncio.run(_serve(pipe, host, port, token, paths, first, marker, source))


class Clients:
    """`processes` client processes sharing `paths` (one follower each) between them."""

    def __init__(
        self, host: str, port: int, token: str, paths: Sequence[str], marker: bytes, processes: int
    ) -> None:
        self._pipes: list[Connection] = []
        self._procs: list[multiprocessing.process.BaseProcess] = []
        per = -(-len(paths) // processes)
        ctx = multiprocessing.get_context("fork")
        for n in range(processes):
            mine = list(paths[n * per : (n + 1) * per])
            parent, child = ctx.Pipe()
            source = f"{SOURCE_NET}.{n + 1}.1"
            args = (child, host, port, token, mine, n * per, marker, source)
            proc = ctx.Process(target=_worker, args=args, daemon=True)
            proc.start()
            self._pipes.append(parent)
            self._procs.append(proc)

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs if p.pid is not None]

    def _all(self, command: str) -> list[object]:
        for pipe in self._pipes:
            pipe.send(command)
        return [pipe.recv() for pipe in self._pipes]

    def connect(self) -> tuple[int, int]:
        """(connected, failed); why they failed is printed."""
        replies = self._all("connect")
        why: Counter[str] = Counter()
        for reply in replies:
            why.update(reply[2])  # type: ignore[index]
        if why:
            reasons = ", ".join(f"{n} {w}" for w, n in why.items())
            print(f"followers that failed to connect: {reasons}")
        return sum(r[0] for r in replies), sum(r[1] for r in replies)  # type: ignore[index]

    def report(self) -> tuple[list[Mark], int, int]:
        marks: list[Mark] = []
        duplicates = dropped = 0
        for got, dup, drop in self._all("report"):  # type: ignore[misc]
            marks += got
            duplicates += dup
            dropped += drop
        return marks, duplicates, dropped

    def close(self) -> None:
        """Closes every follower; a process still busy (we were interrupted while it
        connected) is terminated instead of waited for."""
        for pipe in self._pipes:
            with contextlib.suppress(OSError):
                pipe.send("close")
        for pipe, proc in zip(self._pipes, self._procs, strict=True):
            with contextlib.suppress(OSError, EOFError):
                if pipe.poll(CLOSE_TIMEOUT):
                    pipe.recv()
            proc.join(1)
            if proc.is_alive():
                proc.kill()
                proc.join()


__all__ = ["Clients", "Mark"]
