"""Cut a byte stream into lines, keeping every byte but the newline that ends each line.

Only `\\n` ends a line: `\\r`, NUL and invalid UTF-8 stay in the line as they came. A line longer
than `line_max` is cut into pieces of `line_max` bytes so a task that never writes a newline
cannot exhaust the shipper's memory; like journald's stream transport (`_LINE_BREAK=line-max`),
each piece says why it ended.
"""

from __future__ import annotations

import enum

# Far above journald's 48 KiB LineMax for streams, far below its 768 MiB field limit.
LINE_MAX = 8 * 1024 * 1024


class Break(enum.Enum):
    """Why a line ended."""

    NEWLINE = "newline"
    LINE_MAX = "line-max"
    EOF = "eof"


Line = tuple[bytes, Break]


class LineSplitter:
    """Feed it chunks in order; it hands back the lines they complete."""

    def __init__(self, *, line_max: int = LINE_MAX) -> None:
        if line_max < 1:
            raise ValueError("line_max must be positive")
        self._line_max = line_max
        # Pieces of the unfinished line, joined once its end arrives (no quadratic copying).
        self._carry: list[bytes] = []
        self._carried = 0

    def feed(self, chunk: bytes) -> list[Line]:
        lines: list[Line] = []
        if b"\n" not in chunk:
            self._hold(chunk, lines)
            return lines
        parts = chunk.split(b"\n")
        tail = parts.pop()
        if self._carry:
            self._hold(parts[0], lines)
            parts[0] = b"".join(self._carry)
            self._carry.clear()
            self._carried = 0
        line_max = self._line_max
        for part in parts:
            while len(part) > line_max:
                lines.append((part[:line_max], Break.LINE_MAX))
                part = part[line_max:]
            lines.append((part, Break.NEWLINE))
        self._hold(tail, lines)
        return lines

    def finish(self) -> list[Line]:
        """The stream ended: the unfinished line, if any, is a line too."""
        if not self._carry:
            return []
        rest = b"".join(self._carry)
        self._carry.clear()
        self._carried = 0
        return [(rest, Break.EOF)]

    def _hold(self, piece: bytes, lines: list[Line]) -> None:
        """Carry `piece`, emitting full `line_max` pieces as they fill up."""
        while self._carried + len(piece) > self._line_max:
            take = self._line_max - self._carried
            self._carry.append(piece[:take])
            lines.append((b"".join(self._carry), Break.LINE_MAX))
            self._carry.clear()
            self._carried = 0
            piece = piece[take:]
        if piece:
            self._carry.append(piece)
            self._carried += len(piece)
