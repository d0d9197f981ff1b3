"""The pipeline's position: per feed, the id of the last entry every sink acknowledged (a
journal cursor, or a merged stream's composite cursor). Saved by atomic replace with fsync
of the file and its directory, so after a crash the file holds either the old position or
the new one, never a torn one.

Beside it, `<state>.status` holds what `logway forward status` shows; it is rewritten often
and without fsync: losing it loses nothing."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

VERSION = 1


class PositionError(ValueError):
    pass


def status_path(state: Path) -> Path:
    return state.with_name(state.name + ".status")


def load(path: Path, *, source: str) -> dict[str, str]:
    """The saved positions by feed; empty when the file does not exist yet. A file written
    for another source is refused: resuming a different source from it would skip lines."""
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, orjson.JSONDecodeError) as exc:
        raise PositionError(f"state file {path}: {exc}") from exc
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise PositionError(f"state file {path}: not a logway forward position (version 1)")
    if data.get("source") != source:
        raise PositionError(
            f"state file {path} holds the position of {data.get('source')!r}, not {source!r}: "
            "give each pipeline its own --state"
        )
    positions = data.get("positions")
    if not isinstance(positions, dict):
        raise PositionError(f"state file {path}: no positions")
    return {str(k): str(v) for k, v in positions.items()}


def save(path: Path, *, source: str, positions: Mapping[str, str]) -> None:
    document = {"version": VERSION, "source": source, "positions": dict(positions)}
    write_atomic(path, orjson.dumps(document), durable=True)


def write_atomic(path: Path, data: bytes, *, durable: bool) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    if durable:
        directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)


def read_status(state: Path) -> dict[str, Any] | None:
    try:
        data = orjson.loads(status_path(state).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None
