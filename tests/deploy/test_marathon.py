"""deploy/marathon-gateway.json: a plausible Marathon app whose health checks, ports, secret
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
from app.gateway.app import create_app
from tests.authn.tokens import Signer
from tests.deploy.catalog import DEPLOY, all_settings
from tests.deploy.dockerfile import of

APP = DEPLOY / "marathon-gateway.json"
OPERATORS = {"UNIQUE", "CLUSTER", "GROUP_BY", "LIKE", "UNLIKE", "MAX_PER", "IS"}
# Where the Mesos containerizer mounts the sandbox in a container with an image: relative
# volume paths (file-based secrets among them) land under it.
SANDBOX = Path("/mnt/mesos/sandbox")


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


@pytest.fixture
def runnable(settings: GatewaySettings, tmp_path: Path) -> GatewaySettings:
    """Those settings with a real key file where the secret would be mounted."""
    path = tmp_path / "gateway-service.pem"
    path.write_bytes(Signer.generate("unused").private_pem)
    path.chmod(0o600)
    return settings.model_copy(update={"service_private_key": path})


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
    # The Mesos containerizer running the Docker image: file-based secrets need it (the Docker
    # containerizer has none), and it runs the image's entrypoint as Docker would.
    assert app["container"]["type"] == "MESOS"
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


def test_env_is_valid_for_every_replica(app: dict[str, Any], runnable: GatewaySettings) -> None:
    assert runnable.host == "0.0.0.0"
    assert runnable.mesos_masters == ("http://leader.mesos:5050",)
    create_app(runnable)  # remote-IAM mode: URL and key accepted as a replica reads them
    assert not any(name.startswith("LOGWAY_IAM_") for name in app["env"]), (
        "the embedded IAM's settings: unused by replicas of a remote IAM"
    )


def test_health_check_asks_readyz_on_the_gateway_port(
    app: dict[str, Any], runnable: GatewaySettings
) -> None:
    (check,) = app["healthChecks"]
    assert check["protocol"] == "MESOS_HTTP"
    assert check["path"] == "/readyz"
    assert serves(create_app(runnable), check["path"])
    # MESOS_HTTP runs in the container's network namespace: the container port.
    mapping = app["container"]["portMappings"][check["portIndex"]]
    assert mapping["containerPort"] == runnable.port
    assert check["gracePeriodSeconds"] >= 30, "start-up: the IAM's JWKS and the first Mesos poll"
    assert 0 < check["timeoutSeconds"] < check["intervalSeconds"]
    assert check["maxConsecutiveFailures"] >= 1


def test_replicas_share_one_remote_iam_one_per_host(
    app: dict[str, Any], settings: GatewaySettings
) -> None:
    """Every replica uses one IAM (same users, grants and signing keys, so a token from one
    replica is valid on all and the node readers trust all of them): a remote IAM over HTTP.
    Replicas then hold no state, so they spread one per host, with no shared volume."""
    assert settings.iam_url is not None
    assert settings.iam_url.startswith(("http://", "https://"))
    # The service account's key: a file-based secret, mounted in the sandbox.
    (volume,) = app["container"]["volumes"]
    assert "hostPath" not in volume, "no state shared through the host"
    assert not volume["containerPath"].startswith("/"), "relative: in the sandbox"
    assert settings.service_private_key == SANDBOX / volume["containerPath"]
    assert app["secrets"][volume["secret"]]["source"]
    constraints = app["constraints"]
    for constraint in constraints:
        assert constraint[1] in OPERATORS
        assert all(isinstance(part, str) for part in constraint)
    assert ["hostname", "UNIQUE"] in constraints, "one replica per host"
    assert not any(c[1] == "CLUSTER" for c in constraints)
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
    # Guards the fixture: the document's remote IAM is not the default embedded one.
    assert settings.iam_url is not None
