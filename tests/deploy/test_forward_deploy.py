"""deploy/logway-forward.service, forward.toml.example and marathon-forward.json run the real
command with options it accepts, and the example configuration loads."""

from __future__ import annotations

import json
from pathlib import Path

from app.cli.forward import config_from
from app.cli.main import build_parser
from app.forward import config as forward_config
from tests.deploy.catalog import DEPLOY
from tests.deploy.test_units import INSTALLED, exec_start, one, parse_unit

UNIT = DEPLOY / "logway-forward.service"
EXAMPLE = DEPLOY / "forward.toml.example"
MARATHON = DEPLOY / "marathon-forward.json"


def test_the_unit_runs_forward_with_its_config_and_key() -> None:
    unit = parse_unit(UNIT.read_text())
    argv = exec_start(unit)
    assert argv[:2] == [INSTALLED, "forward"]
    args = build_parser().parse_args(argv[1:])
    assert args.config == Path("/etc/logway/forward.toml")
    assert one(unit, "LoadCredential") == "forwarder.pem:/etc/logway/forwarder.pem"
    assert args.private_key == "%d/forwarder.pem"
    state = Path("/var/lib") / one(unit, "StateDirectory")
    # The example's positions are in the unit's state directory.
    loaded = forward_config.load(EXAMPLE)
    assert {p.state.parent for p in loaded.pipelines} == {state}
    # Access revoked (3) and a refusing sink (4) need an operator, not a restart loop.
    assert set(one(unit, "RestartPreventExitStatus").split()) == {"2", "3", "4"}


def test_the_example_configuration_loads() -> None:
    loaded = forward_config.load(EXAMPLE)
    assert [p.name for p in loaded.pipelines] == ["prod-to-elk", "dev-to-splunk", "central-journal"]
    assert loaded.service_account == "logway-forwarder"
    assert loaded.pipelines[2].words == ("cluster",)
    assert loaded.pipelines[1].window.filters == (("STREAM", "STDERR"),)


def test_the_marathon_app_runs_one_pipeline_from_its_arguments() -> None:
    app = json.loads(MARATHON.read_text())
    assert app["instances"] == 1  # one position file: never two forwarders on it
    args = build_parser().parse_args(app["args"])
    config = config_from(args)
    (pipeline,) = config.pipelines
    assert pipeline.words == ("app", "/prod")
    assert str(pipeline.state).startswith("/mnt/mesos/sandbox/state/")
    volumes = {v["containerPath"] for v in app["container"]["volumes"]}
    assert {"state", "secrets/forwarder.pem"} <= volumes
    assert config.private_key == Path("/mnt/mesos/sandbox/secrets/forwarder.pem")
