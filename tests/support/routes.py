"""What a route depends on, for the tests that every route is admitted by the one dependency."""

from __future__ import annotations

from typing import Any

from fastapi.dependencies.models import Dependant


def dependency_calls(dependant: Dependant) -> set[Any]:
    """Every dependency function `dependant` runs, however deep."""
    found = set()
    for sub in dependant.dependencies:
        found.add(sub.call)
        found |= dependency_calls(sub)
    return found
