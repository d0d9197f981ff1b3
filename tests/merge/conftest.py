"""The merged-read cluster, started once for every end-to-end test in this package (the unit
tests beside them need none of it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import journald_available
from tests.merge.support import Env, merge_env


@pytest.fixture(scope="package")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    if not journald_available():
        pytest.skip("needs root and /lib/systemd/systemd-journald")
    with merge_env(tmp_path_factory.mktemp("merge")) as built:
        yield built
