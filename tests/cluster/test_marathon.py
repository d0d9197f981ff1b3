from __future__ import annotations

import pytest

from app.cluster.marathon import app_id, app_id_from_labels, app_id_from_task_id, is_marathon

UUID = "c1f5ae3f-b81f-11e7-a9ac-52ad791ffaa8"


@pytest.mark.parametrize(
    ("task_id", "expected"),
    [
        (f"app.{UUID}", "/app"),  # legacy
        (f"group_app.{UUID}", "/group/app"),
        (f"a_b_c_{UUID}", "/a/b/c"),  # legacy with the "_" separator
        (f"app.{UUID}.3", "/app"),  # resident, attempt 3
        (f"parent-pod.instance-{UUID}.container-2", "/parent-pod"),  # pod container
        (f"group_app.instance-{UUID}.$anon", "/group/app"),  # app, anonymous container
        (f"group_app.marathon-{UUID}.web", "/group/app"),
        (f"group_app.instance-{UUID}.$anon.2", "/group/app"),  # resident
        (f"group_app.instance-{UUID}._app.1", "/group/app"),  # Marathon 1.8+, incarnation 1
        (f"group_app.instance-{UUID}._app", "/group/app"),
        (f"pod.instance-{UUID}.web.1", "/pod"),
        ("test123-123", None),  # no separator: not a Marathon task id
        ("", None),
    ],
)
def test_app_id_from_marathon_task_ids(task_id: str, expected: str | None) -> None:
    assert app_id_from_task_id(task_id) == expected


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ([{"key": "DCOS_SPACE", "value": "/dev/web"}], "/dev/web"),
        ([{"key": "MARATHON_APP_ID", "value": "/ops/db"}], "/ops/db"),
        (
            [
                {"key": "MARATHON_APP_ID", "value": "/second"},
                {"key": "DCOS_SPACE", "value": "/first"},
            ],
            "/first",
        ),
        ([{"key": "DCOS_SPACE", "value": "relative"}], None),
        ([{"key": "DCOS_SPACE", "value": "/a b"}], None),
        ([{"key": "DCOS_SPACE", "value": "/a/../b"}], None),  # no dot segments
        ([{"key": "DCOS_SPACE", "value": "/a:b"}], None),
        ([{"key": "DCOS_SPACE"}], None),
        ([{"key": "OTHER", "value": "/x"}], None),
    ],
)
def test_app_id_from_labels(labels: list[dict[str, object]], expected: str | None) -> None:
    assert app_id_from_labels(labels) == expected


@pytest.mark.parametrize(
    ("name", "marathon"),
    [
        ("marathon", True),
        ("marathon-user", True),
        ("marathon_user", True),
        ("metronome", False),
        ("marathonx", False),
        ("cassandra", False),
    ],
)
def test_marathon_frameworks(name: str, marathon: bool) -> None:
    assert is_marathon(name) is marathon


def test_labels_first_then_marathon_ids_only() -> None:
    label = [{"key": "DCOS_SPACE", "value": "/spark"}]
    assert app_id(f"driver.{UUID}", label, "spark") == "/spark"
    assert app_id(f"web.{UUID}", [], "marathon") == "/web"
    assert app_id(f"web.{UUID}", [], "metronome") is None
