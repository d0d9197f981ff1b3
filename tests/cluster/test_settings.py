from __future__ import annotations

from typing import Any

import pytest

from app.cluster import ClusterSettings


def test_defaults_are_admin_routers() -> None:
    settings = ClusterSettings()
    assert settings.masters == ("http://leader.mesos:5050",)
    assert (settings.reader_scheme, settings.reader_port) == ("http", 61001)
    assert (settings.poll_period, settings.soft_limit, settings.hard_limit) == (25, 75, 259200)
    assert settings.user_agent == "Logway gateway"


def test_master_urls_are_normalized() -> None:
    settings = ClusterSettings(masters=("http://127.0.0.2:5050/", "https://m.example/mesos/"))
    assert settings.masters == ("http://127.0.0.2:5050", "https://m.example/mesos")


@pytest.mark.parametrize(
    "options",
    [
        {"masters": ()},
        {"masters": "http://leader.mesos:5050"},  # a str, not a sequence of URLs
        {"masters": ("leader.mesos:5050",)},
        {"masters": ("ftp://leader.mesos",)},
        {"masters": ("http://user:pw@leader.mesos:5050",)},
        {"masters": ("http://leader.mesos:5050/?x=1",)},
        {"reader_scheme": "ftp"},
        {"reader_port": 0},
        {"poll_period": 0},
        {"soft_limit": 10, "hard_limit": 5},
        {"refresh_min_interval": -1},
    ],
)
def test_rejected(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"."):
        ClusterSettings(**options)
