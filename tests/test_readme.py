"""The README keeps to what is there: its Layout lists exactly the packages under app/, and its
```sh examples are the commands tests/cli/test_dev.py runs against a dev cluster."""

from __future__ import annotations

from pathlib import Path

from tests.support.readme import layout_packages, sh_lines

APP = Path(__file__).resolve().parents[1] / "app"


def test_layout_lists_exactly_the_packages_under_app() -> None:
    packages = sorted(p.name for p in APP.iterdir() if (p / "__init__.py").exists())
    listed = layout_packages()
    assert len(listed) == len(set(listed)), f"listed twice: {listed}"
    assert sorted(listed) == packages


def test_sh_blocks_are_found_with_their_continuations() -> None:
    text = 'x\n```sh\nA=1; B=2\n# a comment\ncurl -s \\\n  "$GW/x"\n```\n```\nnot me\n```\n'
    assert sh_lines(text) == ["A=1; B=2", 'curl -s "$GW/x"']
    assert any(line.startswith("curl ") for line in sh_lines()), "the README lost its examples"
