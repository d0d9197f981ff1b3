"""deploy/marathon-gateway.json: a plausible Marathon app whose health checks, ports, volume
and environment agree with the gateway's real settings and routes."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Match

from app.cli.main import build_parser
from app.core.config import GatewaySettings
from app.gateway.app import create_app, iam_settings
from tests.deploy.catalog import DEPLOY, all_settings
from tests.deploy.dockerfile import of

APP = DEPLOY / "marathon-gateway.json"
OPERATORS = {"UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "UNLIKE", "MAX_PER", "IS"}


@pytest.fixture(scope="module")
def app() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(APP.read_text())
    return document


@pytest.fixture
def settings(app: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> GatewaySettings:
    """GatewaySettings as a replica builds them from the app's environment (and nothing else)."""
    for name in list(os.environ):
        if name.upper().startswith("LOGWAY_"):
            monkeypatch.delenv(name)
    for name, value in app["env"].items():
        monkeypatch.setenv(name, value)
    return GatewaySettings()


def serves(app: Starlette, path: str) -> bool:
    scope = {"type": "http", "path": path, "method": "GET", "root_path": "", "path_params": {}}
    return any(route.matches(scope)[0] == Match.FULL for route in app.router.routes)


def test_serves_matches_only_real_routes(tmp_path: Path) -> None:
    gateway = create_app(GatewaySettings(data_dir=tmp_path))
    assert serves(gateway, "/healthz")
    assert not serves(gateway, "/readyz/nope")


def test_runs_several_gateway_replicas_from_the_image(app: dict[str, Any]) -> None:
    assert re.fullmatch(r"(/[a-z0-9]([a-z0-9-]*[a-z0-9])?)+", app["id"])
    assert app["instances"] >= 2
    assert app["container"]["type"] == "DOCKER"
    assert app["container"]["docker"]["image"]
    assert "cmd" not in app, "args, not cmd: the image's ENTRYPOINT is the logway command"
    assert json.loads(of("ENTRYPOINT")[-1]) == ["logway"]
    args = build_parser().parse_args(app["args"])
    assert args.command == "gateway"


def test_env_names_only_real_settings_as_strings(app: dict[str, Any]) -> None:
    known = {s.env for s in all_settings()}
    assert set(app["env"]) <= known
    assert all(isinstance(v, str) for v in app["env"].values()), "Marathon env values are strings"
    assert "LOGWAY_IAM_SUPERUSER_PASSWORD" not in app["env"], "readable by every Marathon reader"


def test_env_is_valid_for_every_replica(app: dict[str, Any], settings: GatewaySettings) -> None:
    assert settings.host == "0.0.0.0"
    assert settings.mesos_masters == ("http://leader.mesos:5050",)
    iam = iam_settings(settings)  # the IAM settings are built from the same environment
    assert iam.superuser_uid == app["env"]["LOGWAY_IAM_SUPERUSER_UID"]
    assert iam.db_path.parent == settings.data_dir


def test_health_check_asks_readyz_on_the_gateway_port(
    app: dict[str, Any], settings: GatewaySettings, tmp_path: Path
) -> None:
    (check,) = app["healthChecks"]
    assert check["protocol"] == "MESOS_HTTP"
    assert check["path"] == "/readyz"
    assert serves(create_app(settings.model_copy(update={"data_dir": tmp_path})), check["path"])
    # MESOS_HTTP runs in the container's network namespace: the container port.
    mapping = app["container"]["portMappings"][check["portIndex"]]
    assert mapping["containerPort"] == settings.port
    assert check["gracePeriodSeconds"] >= 30, "start-up: IAM store and the first Mesos poll"
    assert 0 < check["timeoutSeconds"] < check["intervalSeconds"]
    assert check["maxConsecutiveFailures"] >= 1


def test_replicas_share_one_iam_store(app: dict[str, Any], settings: GatewaySettings) -> None:
    """Every replica must use one IAM (same users, grants and signing keys, so a token from one
    replica is valid on all and the node readers trust all of them). Today that is the embedded
    store in one host directory: SQLite WAL and flock'd key files work between processes on
    one host only. So the replicas share a hostPath volume and are held to one host."""
    (volume,) = app["container"]["volumes"]
    assert volume["containerPath"] == str(settings.data_dir)
    assert volume["mode"] == "RW"
    assert volume["hostPath"].startswith("/")
    constraints = app["constraints"]
    for constraint in constraints:
        assert constraint[1] in OPERATORS
        assert all(isinstance(part, str) for part in constraint)
    assert any(c[1] == "CLUSTER" for c in constraints), "replicas must land on one host"
    assert not any(c[0] == "hostname" and c[1] == "UNIQUE" for c in constraints)
    # On one host, several replicas need dynamic host ports.
    assert all(m.get("hostPort", 0) == 0 for m in app["container"]["portMappings"])


def test_networking_and_load_balancer_labels(app: dict[str, Any]) -> None:
    assert app["networks"] == [{"mode": "container/bridge"}]
    mappings = app["container"]["portMappings"]
    labels = app["labels"]
    assert all(isinstance(v, str) for v in labels.values())
    # marathon-lb: HAPROXY_<n>_* name the n-th port; HTTP mode, long streams -> leastconn.
    for key in labels:
        index = re.fullmatch(r"HAPROXY_(\d+)_[A-Z_]+", key)
        if index:
            assert int(index.group(1)) < len(mappings), key
    assert labels["HAPROXY_GROUP"]
    assert labels["HAPROXY_0_MODE"] == "http"
    assert labels["HAPROXY_0_BALANCE"] == "leastconn"
    # DC/OS named VIP for in-cluster clients (node readers' JWKS URL): /name:port.
    vip = mappings[0]["labels"]["VIP_0"]
    parsed = re.fullmatch(r"/([a-z0-9-]+):(\d+)", vip)
    assert parsed, vip
    name, port = parsed.groups()
    assert int(port) == mappings[0]["containerPort"]
    node_example = (DEPLOY / "node.env.example").read_text()
    assert f"{name}.marathon.l4lb.thisdcos.directory:{port}" in node_example


def test_upgrades_keep_capacity(app: dict[str, Any]) -> None:
    strategy = app["upgradeStrategy"]
    assert 0 <= strategy["minimumHealthCapacity"] <= 1
    assert 0 <= strategy["maximumOverCapacity"] <= 1
    assert strategy["minimumHealthCapacity"] + strategy["maximumOverCapacity"] > 1, (
        "an upgrade must start new replicas before stopping old ones, or capacity drops"
    )
    assert app["taskKillGracePeriodSeconds"] >= 3  # uvicorn's graceful shutdown is 2 s


def test_settings_fixture_reads_the_app_env(settings: GatewaySettings) -> None:
    # Guards the fixture: the document's data dir differs from the default one.
    assert settings.data_dir != Path(".logway/gateway")
