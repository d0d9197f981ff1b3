"""The systemd units in deploy/: `systemd-analyze verify` and `security` pass, and they say what
the deployment relies on (the reader in the systemd-journal group, the gateway's state
directory, hardening, real commands and settings)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.cli.main import build_parser
from tests.deploy.catalog import DEPLOY, all_settings

UNITS = sorted(DEPLOY.glob("*.service"))
NODE = DEPLOY / "logway-node.service"
GATEWAY = DEPLOY / "logway-gateway.service"
INSTALLED = "/opt/logway/bin/logway"
# `systemd-analyze security` exposure, 0-100 (shown as 0.0-10.0); both units are at 13 now.
EXPOSURE_THRESHOLD = 20
needs_systemd_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="needs systemd-analyze"
)

Unit = dict[tuple[str, str], list[str]]


def parse_unit(text: str) -> Unit:
    """(section, key) -> every value in order, continuation lines joined; an empty assignment
    resets the list, as systemd does."""
    unit: Unit = {}
    section = ""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip() if pending else raw.strip()
        if line.endswith("\\"):
            pending = line[:-1].rstrip() + " "
            continue
        pending = ""
        logical.append(line)
    for line in logical:
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        values = unit.setdefault((section, key.strip()), [])
        if value.strip():
            values.append(value.strip())
        else:
            values.clear()
    return unit


def one(unit: Unit, key: str, section: str = "Service") -> str:
    values = unit.get((section, key))
    assert values is not None, f"{key}= is not set"
    assert len(values) <= 1, f"{key}= is set {len(values)} times"
    return values[0] if values else ""


def verifiable_copy(unit: Path, tmp_path: Path) -> Path:
    # The units name /opt/logway/bin/logway, which verify requires to exist: point them at
    # this checkout's entry point.
    logway = Path(sys.executable).with_name("logway")
    copy = tmp_path / unit.name
    copy.write_text(unit.read_text().replace(INSTALLED, str(logway)))
    return copy


def test_both_units_exist() -> None:
    assert [u.name for u in UNITS] == [
        "logway-forward.service",
        "logway-gateway.service",
        "logway-node.service",
    ]


@needs_systemd_analyze
@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_unit_verifies(unit: Path, tmp_path: Path) -> None:
    copy = verifiable_copy(unit, tmp_path)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, check=False
    )
    problems = [
        line for line in result.stderr.splitlines() if unit.name in line or "logway" in line.lower()
    ]
    assert result.returncode == 0, result.stderr
    assert problems == [], problems


@needs_systemd_analyze
def test_verify_reports_what_the_test_looks_for(tmp_path: Path) -> None:
    # The check above reads verify's warnings: an unknown key or a bad value is only a warning
    # (exit 0), so make sure such warnings reach it in the form it filters.
    broken = tmp_path / "logway-broken.service"
    broken.write_text(
        verifiable_copy(NODE, tmp_path).read_text()
        + "[Service]\nProtectSytem=strict\nRestrictAddressFamilies=AF_NOPE\n"
    )
    result = subprocess.run(
        ["systemd-analyze", "verify", str(broken)], capture_output=True, text=True, check=False
    )
    flagged = [line for line in result.stderr.splitlines() if broken.name in line]
    assert any("ProtectSytem" in line for line in flagged), result.stderr
    assert any("AF_NOPE" in line for line in flagged), result.stderr


@needs_systemd_analyze
@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_unit_exposure_stays_low(unit: Path, tmp_path: Path) -> None:
    copy = verifiable_copy(unit, tmp_path)
    result = subprocess.run(
        [
            "systemd-analyze",
            "security",
            "--offline=true",
            f"--threshold={EXPOSURE_THRESHOLD}",
            "--no-pager",
            str(copy),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    overall = [line for line in result.stdout.splitlines() if "Overall exposure" in line]
    assert overall, result.stdout[-3000:] + result.stderr
    assert result.returncode == 0, result.stdout[-3000:]


HARDENING = {
    "NoNewPrivileges": "yes",
    "CapabilityBoundingSet": "",
    "AmbientCapabilities": "",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "ProtectClock": "yes",
    "ProtectProc": "invisible",
    "RestrictNamespaces": "yes",
    "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "SystemCallArchitectures": "native",
    "DynamicUser": "yes",
}


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_unit_is_hardened(unit: Path) -> None:
    parsed = parse_unit(unit.read_text())
    assert {key: one(parsed, key) for key in HARDENING} == HARDENING
    assert one(parsed, "User") not in ("", "root", "0")
    families = set(one(parsed, "RestrictAddressFamilies").split())
    assert families <= {"AF_INET", "AF_INET6", "AF_UNIX"}
    filters = parsed[("Service", "SystemCallFilter")]
    assert filters[0] == "@system-service"
    assert "~@privileged @resources" in filters


def test_the_reader_may_read_the_journal_and_nothing_else() -> None:
    node = parse_unit(NODE.read_text())
    assert one(node, "SupplementaryGroups") == "systemd-journal"
    assert ("Service", "StateDirectory") not in node, "the reader keeps no state"
    assert ("Service", "ReadWritePaths") not in node


def test_the_gateway_keeps_its_state_in_its_state_directory() -> None:
    gateway = parse_unit(GATEWAY.read_text())
    assert ("Service", "SupplementaryGroups") not in gateway, "the gateway reads no journal"
    state = one(gateway, "StateDirectory")
    args = build_parser().parse_args(exec_start(gateway)[1:])
    assert args.data_dir == Path("/var/lib") / state
    assert one(gateway, "StateDirectoryMode") == "0700"


@pytest.mark.parametrize(
    ("unit", "command", "env_file"),
    [(NODE, "node", "/etc/logway/node.env"), (GATEWAY, "gateway", "/etc/logway/gateway.env")],
    ids=["node", "gateway"],
)
def test_unit_runs_the_real_command_with_its_env_file(
    unit: Path, command: str, env_file: str
) -> None:
    parsed = parse_unit(unit.read_text())
    argv = exec_start(parsed)
    assert argv[:2] == [INSTALLED, command]
    args = build_parser().parse_args(argv[1:])  # SystemExit on an unknown flag
    assert args.command == command
    # Required (no leading "-"): without its settings the service must not start.
    assert parsed[("Service", "EnvironmentFile")] == [env_file]


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_unit_names_only_real_settings(unit: Path) -> None:
    known = {s.env for s in all_settings()}
    named = set(re.findall(r"\bLOGWAY_[A-Z0-9_]*[A-Z0-9]\b", unit.read_text()))
    assert named - known == set()


def exec_start(unit: Unit) -> list[str]:
    # %S is the state directory root of system units.
    return shlex.split(one(unit, "ExecStart").replace("%S", "/var/lib"))


def test_parse_unit_joins_continuations_and_resets() -> None:
    parsed = parse_unit("[Service]\nExecStart=/bin/a \\\n    --b\nX=1\nX=\nX=2\n# Y=3\n")
    assert parsed[("Service", "ExecStart")] == ["/bin/a --b"]
    assert parsed[("Service", "X")] == ["2"]
    assert ("Service", "Y") not in parsed
