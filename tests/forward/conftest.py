"""The forwarder's cluster, started once for the end-to-end tests of this package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import journald_available
from tests.forward.support import Env, forward_env


@pytest.fixture(scope="package")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    if not journald_available():
        pytest.skip("needs root and /lib/systemd/systemd-journald")
    with forward_env(tmp_path_factory.mktemp("forward")) as built:
        yield built
