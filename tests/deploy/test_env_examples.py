"""deploy/node.env.example and deploy/gateway.env.example document every setting, correctly.

A setting added to a settings class without an entry here fails `test_every_setting_is_documented`;
`python -m tests.deploy.catalog` prints the entries to fill in.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from pydantic_settings import BaseSettings

from tests.deploy.catalog import (
    GATEWAY_EXAMPLE,
    NODE_EXAMPLE,
    Setting,
    all_settings,
    gateway_settings,
    node_settings,
    render,
    settings_classes,
)
from tests.deploy.envfile import Entry, assignments, documented, names_mentioned

EXAMPLES = {NODE_EXAMPLE: node_settings, GATEWAY_EXAMPLE: gateway_settings}
PLACEHOLDER_PATH = Path("/placeholder")


def instantiate(cls: type[BaseSettings], env: dict[str, str], mp: pytest.MonkeyPatch) -> Any:
    """`cls` as the server builds it with exactly `env` in its environment."""
    with mp.context() as m:
        for name in list(os.environ):
            if name.upper().startswith("LOGWAY_"):
                m.delenv(name)
        for name, value in env.items():
            m.setenv(name, value)
        required = {n: PLACEHOLDER_PATH for n, f in cls.model_fields.items() if f.is_required()}
        given = {n: v for n, v in required.items() if f"{_prefix(cls)}{n}".upper() not in env}
        return cls(**given)


def _prefix(cls: type[BaseSettings]) -> str:
    return str(cls.model_config.get("env_prefix", ""))


def _name(cls: type[BaseSettings]) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _classes_of(settings: list[Setting]) -> list[type[BaseSettings]]:
    owners = {s.owner for s in settings}
    return [c for c in settings_classes() if _name(c) in owners]


def test_the_catalog_finds_the_servers_settings() -> None:
    # Guards the catalog itself: were it to find nothing, every test below would pass.
    names = {s.env for s in all_settings()}
    assert {"LOGWAY_NODE_JWKS_URL", "LOGWAY_GATEWAY_MESOS_MASTERS", "LOGWAY_IAM_LEEWAY"} <= names
    owners = {s.owner for s in all_settings()}
    assert {
        "app.core.config.NodeSettings",
        "app.core.config.GatewaySettings",
        "app.iam.settings.IamSettings",
    } <= owners


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_setting_is_documented(example: Path) -> None:
    entries = documented(example.read_text())
    wanted = [s.env for s in EXAMPLES[example]()]
    missing = [name for name in wanted if name not in entries]
    assert missing == [], f"{example.name} lacks {missing}: run python -m tests.deploy.catalog"
    assert sorted(entries) == sorted(wanted), "documents settings of another server"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_every_name_in_the_example_is_a_setting(example: Path) -> None:
    known = {s.env for s in all_settings()}
    assert names_mentioned(example.read_text()) - known == set()


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_each_entry_states_the_real_default_and_a_meaning(example: Path) -> None:
    entries = documented(example.read_text())
    for setting in EXAMPLES[example]():
        entry = entries.get(setting.env)
        if entry is None:
            continue  # test_every_setting_is_documented names it
        assert entry.default == setting.default_text, setting.env
        assert entry.meaning, f"{setting.env}: say what it means"
        assert "TODO" not in entry.meaning, f"{setting.env}: say what it means"


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_the_example_as_written_is_valid(example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = example.read_text()
    active = assignments(text)
    entries = documented(text)
    assert set(active) == {name for name, e in entries.items() if e.active}
    assert active, "an example that sets nothing shows nothing"
    settings = EXAMPLES[example]()
    for cls in _classes_of(settings):
        built = instantiate(cls, active, monkeypatch)
        for setting in settings:
            if setting.env in active and setting.owner == _name(cls):
                # read as written, not dropped or reinterpreted
                assert render(getattr(built, setting.field)) == active[setting.env], setting.env


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_each_commented_value_is_valid(example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Uncommented (beside the active lines), each line is accepted; a default gives the default."""
    text = example.read_text()
    active = assignments(text)
    entries = documented(text)
    for setting in EXAMPLES[example]():
        entry: Entry | None = entries.get(setting.env)
        if entry is None or entry.active:
            continue
        (cls,) = _classes_of([setting])
        value = getattr(
            instantiate(cls, {**active, setting.env: entry.value}, monkeypatch), setting.field
        )
        assert render(value) == entry.value, setting.env
        if setting.default_text not in ("unset", "required"):
            assert entry.value == setting.default_text, f"{setting.env}: show the default"
            assert value == setting.info.default, setting.env


def test_the_parser_rejects_what_systemd_reads_differently() -> None:
    for line in ('LOGWAY_X="a"', "LOGWAY_X='a'", "LOGWAY_X=a\\b", "LOGWAY_X=a "):
        with pytest.raises(ValueError, match="quotes, backslashes or blanks"):
            assignments(line)
    with pytest.raises(ValueError, match="not KEY=VALUE"):
        assignments(" LOGWAY_X=a")
    assert assignments('# c\n; c\nLOGWAY_X=["a"]\n') == {"LOGWAY_X": '["a"]'}
