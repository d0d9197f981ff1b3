"""Plain-text tables and target verdicts; nothing here measures."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

PASS = "PASS"
SHORT = "FALL SHORT"
SKIPPED = "n/a"


@dataclass(frozen=True, slots=True)
class Verdict:
    target: str
    measured: str
    outcome: str


def at_least(target: str, value: float | None, bound: float, fmt: str) -> Verdict:
    if value is None:
        return Verdict(target, "skipped", SKIPPED)
    return Verdict(target, fmt.format(value), PASS if value >= bound else SHORT)


def below(target: str, value: float, bound: float, fmt: str) -> Verdict:
    return Verdict(target, fmt.format(value), PASS if value < bound else SHORT)


def holds(target: str, ok: bool, measured: str) -> Verdict:
    return Verdict(target, measured, PASS if ok else SHORT)


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def table(header: Sequence[str], rows: Sequence[Sequence[str]], *, right: int = 1) -> str:
    """Columns from `right` on are right-aligned (figures)."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        out = [
            str(c).rjust(w) if i >= right else str(c).ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(out).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(r) for r in rows)])


def rate(value: float) -> str:
    return f"{value:,.0f}/s"


def mib(size: int) -> str:
    return f"{size / (1 << 20):,.1f} MiB"


def section(title: str) -> str:
    return f"\n== {title} " + "=" * max(0, 76 - len(title))
