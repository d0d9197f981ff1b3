"""Every LOGWAY_* setting the servers accept, found in the source, for the deploy tests.

Settings classes are found by reading `app/` (any class deriving from `BaseSettings`), so a new
class or field is caught without editing this file. `python -m tests.deploy.catalog` prints an
env-file skeleton for the settings an example does not document yet.
"""

from __future__ import annotations

import ast
import functools
import importlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
NODE_EXAMPLE = DEPLOY / "node.env.example"
GATEWAY_EXAMPLE = DEPLOY / "gateway.env.example"
NODE_CLASS = "app.core.config.NodeSettings"  # `logway node`; every other class is the gateway's


@dataclass(frozen=True)
class Setting:
    env: str  # LOGWAY_GATEWAY_PORT
    owner: str  # module.Class
    field: str
    info: FieldInfo

    @property
    def required(self) -> bool:
        return self.info.is_required()

    @property
    def default_text(self) -> str:
        """The default as an env file writes it; `unset` for None, `required` for none."""
        if self.required:
            return "required"
        return render(self.info.default)


def render(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return json.dumps(list(value), separators=(",", ":"))
    return str(value)


@functools.cache
def settings_classes() -> tuple[type[BaseSettings], ...]:
    found: list[type[BaseSettings]] = []
    for path in sorted((ROOT / "app").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        names = [
            node.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ClassDef)
            and any(_base_name(b) == "BaseSettings" for b in node.bases)
        ]
        if names:
            module = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
            found.extend(getattr(module, name) for name in names)
    return tuple(found)


def _base_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def all_settings() -> list[Setting]:
    settings = []
    for cls in settings_classes():
        prefix = cls.model_config.get("env_prefix", "")
        for name, info in cls.model_fields.items():
            alias = info.validation_alias
            if alias is not None and not isinstance(alias, str):
                raise NotImplementedError(f"{cls.__name__}.{name}: AliasChoices not catalogued")
            env = (alias or f"{prefix}{name}").upper()
            settings.append(Setting(env, f"{cls.__module__}.{cls.__qualname__}", name, info))
    return settings


def node_settings() -> list[Setting]:
    return [s for s in all_settings() if s.owner == NODE_CLASS]


def gateway_settings() -> list[Setting]:
    return [s for s in all_settings() if s.owner != NODE_CLASS]


def skeleton(settings: list[Setting]) -> str:
    """An entry per setting in the examples' format, meaning left for a human to write."""
    lines = []
    for s in settings:
        value = "" if s.default_text in ("unset", "required") else s.default_text
        lines += [f"## {s.env} (default: {s.default_text})", "# TODO: what it means"]
        lines += [f"#{s.env}={value}", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    from tests.deploy.envfile import documented

    for example, wanted in ((NODE_EXAMPLE, node_settings()), (GATEWAY_EXAMPLE, gateway_settings())):
        known = set(documented(example.read_text()))
        missing = [s for s in wanted if s.env not in known]
        if missing:
            sys.stdout.write(f"# --- missing from {example.relative_to(ROOT)} ---\n")
            sys.stdout.write(skeleton(missing) + "\n")
