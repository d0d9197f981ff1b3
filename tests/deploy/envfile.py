"""Reading the deploy/*.env.example files: their documented entries and their assignments.

The examples keep to the plain subset of systemd's EnvironmentFile syntax (no quotes, no
backslashes, no trailing blanks), where systemd, `docker run --env-file` and Marathon all read
`KEY=VALUE` as the bytes after the first `=`; `assignments` refuses anything else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HEADER = re.compile(r"^## (LOGWAY_[A-Z0-9_]+) \(default: (.+)\)$")
ASSIGNMENT = re.compile(r"^(#?)(LOGWAY_[A-Z0-9_]+)=(.*)$")
NAME = re.compile(r"\bLOGWAY_[A-Z0-9_]*[A-Z0-9]\b")


@dataclass(frozen=True)
class Entry:
    name: str
    default: str  # as the header states it
    meaning: str
    value: str  # the entry's own line, active or commented out
    active: bool


def documented(text: str) -> dict[str, Entry]:
    """`## NAME (default: X)`, comment lines saying what it means, then `NAME=` or `#NAME=`."""
    entries: dict[str, Entry] = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        header = HEADER.match(line)
        if header is None:
            continue
        name, default = header.groups()
        meaning: list[str] = []
        j = i + 1
        while j < len(lines) and lines[j].startswith("# ") and not ASSIGNMENT.match(lines[j]):
            meaning.append(lines[j][2:])
            j += 1
        line_of = ASSIGNMENT.match(lines[j]) if j < len(lines) else None
        if line_of is None or line_of.group(2) != name:
            raise ValueError(f"{name}: the header is not followed by its meaning and {name}=")
        if name in entries:
            raise ValueError(f"{name} is documented twice")
        entries[name] = Entry(name, default, " ".join(meaning), line_of.group(3), not line_of[1])
    return entries


def assignments(text: str) -> dict[str, str]:
    """The variables an EnvironmentFile reader sets (every uncommented KEY=VALUE line)."""
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith(("#", ";")):
            if line.rstrip().endswith("\\"):
                raise ValueError(f"line {number}: a comment ending in \\ continues (systemd 254)")
            continue
        key, sep, value = line.partition("=")
        if not sep or key != key.strip() or not re.fullmatch(r"[A-Z][A-Z0-9_]*", key):
            raise ValueError(f"line {number}: not KEY=VALUE: {line!r}")
        if value != value.strip() or value[:1] in ("'", '"') or "\\" in value:
            raise ValueError(f"line {number}: quotes, backslashes or blanks read differently")
        if key in found:
            raise ValueError(f"line {number}: {key} set twice")
        found[key] = value
    return found


def names_mentioned(text: str) -> set[str]:
    """Every LOGWAY_* word in the text, prose included."""
    return set(NAME.findall(text))
