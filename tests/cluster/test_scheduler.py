"""Where Marathon leads, from the Mesos state (issue 18): the active framework's scheduler
address (`pid` host, else `hostname`) must be a master or an agent the state knows."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from app.cluster import Agent, ClusterSettings, ClusterSnapshot, Master, build_snapshot
from app.cluster.scheduler import MARATHON, SchedulerUnknown, scheduler_node
from tests.cluster.support import fixture_path

LEADER = "10.0.4.125"  # the fixture's master, where its Marathon and Metronome registered


def fixture_doc() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(fixture_path().read_bytes())
    return doc


def snap(doc: dict[str, Any], masters: tuple[str, ...] = ()) -> ClusterSnapshot:
    return build_snapshot(
        orjson.dumps(doc), reader_scheme="http", reader_port=61001, masters=masters
    )


def marathon(doc: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = next(f for f in doc["frameworks"] if f["name"] == MARATHON)
    return found


def test_the_fixtures_marathon_leads_from_its_master() -> None:
    found = scheduler_node(snap(fixture_doc()), MARATHON)
    assert isinstance(found.node, Master)
    assert found.node.ip == LEADER
    assert found.reader_url == f"http://{LEADER}:61001"
    assert found.framework.id.endswith("-0000")
    assert scheduler_node(snap(fixture_doc()), "metronome").node.ip == LEADER


def test_an_agent_is_a_known_node() -> None:
    doc = fixture_doc()
    marathon(doc)["pid"] = "scheduler-x@10.0.0.157:15101"
    found = scheduler_node(snap(doc), MARATHON)
    assert isinstance(found.node, Agent)
    assert found.node.id.endswith("-S1")
    assert found.reader_url == "http://10.0.0.157:61001"


def test_the_pid_wins_over_the_hostname() -> None:
    doc = fixture_doc()
    marathon(doc)["hostname"] = "10.0.6.133"  # S0; the pid still names the master
    assert scheduler_node(snap(doc), MARATHON).node.ip == LEADER


@pytest.mark.parametrize("pid", [None, "", "scheduler-x@no-ip:1", "garbage"])
def test_without_a_usable_pid_the_hostname_decides(pid: str | None) -> None:
    doc = fixture_doc()
    marathon(doc)["pid"] = pid
    marathon(doc)["hostname"] = "10.0.6.133"
    node = scheduler_node(snap(doc), MARATHON).node
    assert isinstance(node, Agent)
    assert node.ip == "10.0.6.133"


def test_a_hostname_an_agent_reports_is_known() -> None:
    doc = fixture_doc()
    doc["slaves"][0]["hostname"] = "ip-10-0-0-157.internal"
    del marathon(doc)["pid"]
    marathon(doc)["hostname"] = "ip-10-0-0-157.internal"
    assert scheduler_node(snap(doc), MARATHON).node.ip == "10.0.0.157"


@pytest.mark.parametrize(
    "pid",
    ["scheduler-x@10.9.9.9:15101", "scheduler-x@127.0.0.1:15101", "scheduler-x@[::1]:15101"],
)
def test_an_address_the_state_does_not_know_is_refused(pid: str) -> None:
    doc = fixture_doc()
    marathon(doc)["pid"] = pid
    with pytest.raises(SchedulerUnknown) as refused:
        scheduler_node(snap(doc), MARATHON)
    assert refused.value.status == 503
    host = pid.rpartition("@")[2].rpartition(":")[0].strip("[]")
    assert f"registered from '{host}'" in str(refused.value)
    assert "no master or agent of this cluster" in str(refused.value)


def test_no_address_at_all_is_refused() -> None:
    doc = fixture_doc()
    del marathon(doc)["pid"]
    del marathon(doc)["hostname"]
    with pytest.raises(SchedulerUnknown, match="names no scheduler address"):
        scheduler_node(snap(doc), MARATHON)


@pytest.mark.parametrize("change", ["inactive", "gone", "completed", "renamed"])
def test_no_active_marathon_is_unknown(change: str) -> None:
    doc = fixture_doc()
    framework = marathon(doc)
    if change == "inactive":
        framework["active"] = False
    elif change == "gone":
        doc["frameworks"].remove(framework)
    elif change == "completed":
        doc["frameworks"].remove(framework)
        doc["completed_frameworks"].append(framework)
    else:
        framework["name"] = "marathon-user"  # Marathon on Marathon is not the root one
    with pytest.raises(SchedulerUnknown, match=r"^marathon leader is unknown: no active"):
        scheduler_node(snap(doc), MARATHON)


def test_two_active_marathons_are_ambiguous() -> None:
    doc = fixture_doc()
    doc["frameworks"].append(marathon(doc) | {"id": "other-0009"})
    with pytest.raises(SchedulerUnknown, match="several active `marathon` frameworks"):
        scheduler_node(snap(doc), MARATHON)


def test_a_configured_master_by_ip_is_known_though_it_does_not_lead() -> None:
    doc = fixture_doc()
    marathon(doc)["pid"] = "scheduler-x@10.0.4.126:15101"
    with pytest.raises(SchedulerUnknown):
        scheduler_node(snap(doc), MARATHON)
    snapshot = snap(doc, masters=(LEADER, "10.0.4.126"))
    assert [m.ip for m in snapshot.masters] == [LEADER, "10.0.4.126"]
    found = scheduler_node(snapshot, MARATHON)
    assert found.node.ip == "10.0.4.126"
    assert found.reader_url == "http://10.0.4.126:61001"


def test_settings_name_the_masters_given_by_ip() -> None:
    settings = ClusterSettings(
        masters=("http://leader.mesos:5050", "http://10.0.4.126:5050", "https://[fd00::1]:5050")
    )
    assert settings.master_ips == ("10.0.4.126", "fd00::1")
