"""The README shows the route → permission table exactly as app/authz/route_table.py has it."""

from __future__ import annotations

from pathlib import Path

from app.authz import routes_markdown

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_route_table_matches_the_code() -> None:
    text = README.read_text()
    start = text.index("<!-- routes:begin -->") + len("<!-- routes:begin -->")
    end = text.index("<!-- routes:end -->")
    assert text[start:end].strip() == routes_markdown().strip()
