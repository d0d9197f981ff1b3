"""The README's runnable examples: the lines of its ```sh blocks, continuations joined, so a
test can run each as a newcomer would paste it (tests/cli/test_dev.py), and its Layout
section's package names (tests/test_readme.py)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
_BLOCK = re.compile(r"^ *```sh\n(.*?)^ *```", re.S | re.M)
_LAYOUT = re.compile(r"^## Layout\n+```\n(.*?)^```", re.S | re.M)


def sh_lines(text: str | None = None) -> list[str]:
    """Every line of every ```sh block, a trailing `\\` joined with the next; comments and
    blank lines dropped."""
    text = README.read_text() if text is None else text
    lines: list[str] = []
    for block in _BLOCK.findall(text):
        joined = re.sub(r"\s*\\\n\s*", " ", block)
        lines += [ln.strip() for ln in joined.splitlines() if ln.strip() and not ln.startswith("#")]
    return lines


def layout_packages(text: str | None = None) -> list[str]:
    """The `app/<name>` entries of the Layout section, in order."""
    text = README.read_text() if text is None else text
    found = _LAYOUT.search(text)
    assert found, "README has no Layout section with a code block"
    return re.findall(r"^app/(\w+)\s", found.group(1), re.M)
