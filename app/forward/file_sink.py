"""`file:///path/to/out.ndjson?max_bytes=N&keep=K`: the shared JSON event a line, appended and
fsynced per batch; past `max_bytes` the file is rotated (`out.ndjson.1` … `.K`)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import unquote, urlsplit

import orjson

from app.forward.record import Record
from app.forward.sink import ConfigError, SinkError, query

DEFAULT_MAX_BYTES = 100 * 1024 * 1024
DEFAULT_KEEP = 5


class FileSink:
    def __init__(self, path: Path, *, max_bytes: int, keep: int) -> None:
        self.path = path
        self.name = f"file://{path}"
        self.max_bytes = max_bytes
        self.keep = keep

    @classmethod
    def from_url(cls, url: str) -> FileSink:
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ConfigError(f"{url}: expected file:///absolute/path")
        options = query(url)
        numbers = {}
        for name, default in (("max_bytes", DEFAULT_MAX_BYTES), ("keep", DEFAULT_KEEP)):
            raw = options.get(name, str(default))
            if not raw.isdigit() or int(raw) < 1:
                raise ConfigError(f"{url}: {name} {raw!r}; expected a positive number")
            numbers[name] = int(raw)
        return cls(Path(unquote(parts.path)), **numbers)

    async def send(self, batch: Sequence[Record]) -> None:
        data = b"".join(orjson.dumps(r.event()) + b"\n" for r in batch)
        try:
            await asyncio.to_thread(self._append, data)
        except OSError as exc:
            raise SinkError(f"cannot write {self.path}: {exc}", retryable=True) from exc

    def _append(self, data: bytes) -> None:
        try:
            if self.path.stat().st_size >= self.max_bytes:
                self._rotate()
        except FileNotFoundError:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _rotate(self) -> None:
        for n in range(self.keep - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{n}")
            if older.exists():
                older.replace(self.path.with_name(f"{self.path.name}.{n + 1}"))
        self.path.replace(self.path.with_name(f"{self.path.name}.1"))

    async def close(self) -> None:
        return None
