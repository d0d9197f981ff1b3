"""deploy/Dockerfile, checked without a Docker daemon (none here; the image is not built):
what it copies exists and enters the build context, the entry point runs, the runtime stage is
non-root and compiler-free, and its HEALTHCHECK script tells a ready gateway from one that is
not, against a real gateway."""

from __future__ import annotations

import fnmatch
import json
import shlex
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from app.core.config import GatewaySettings
from app.devcluster.mesos import MesosSimulator, SimCluster
from tests.conftest import free_port
from tests.deploy.catalog import DEPLOY, ROOT, all_settings
from tests.deploy.dockerfile import LAST_STAGE, of
from tests.gateway.support import DEAD_MESOS
from tests.support.gateway import gateway
from tests.support.wait import wait_for

IGNORE = DEPLOY / "Dockerfile.dockerignore"
PASSWORD = "deploy healthcheck password"


def copied_sources() -> list[str]:
    sources = []
    for args in of("COPY"):
        words = shlex.split(args)
        if any(w.startswith("--from") for w in words):
            continue
        sources += [w for w in words[:-1] if not w.startswith("--")]
    return sources


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    verdict = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        glob = pattern.lstrip("!")
        if any(_match(c, glob) for c in candidates):
            verdict = not negated
    return verdict


def _match(path: str, glob: str) -> bool:
    if glob.startswith("**/"):
        return _match(path, glob[3:]) or any(
            _match("/".join(path.split("/")[n:]), glob[3:]) for n in range(1, path.count("/") + 1)
        )
    return path.count("/") == glob.count("/") and fnmatch.fnmatchcase(path, glob)


def ignore_patterns() -> list[str]:
    lines = [line.strip() for line in IGNORE.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_two_stages_from_python_311_slim() -> None:
    assert of("FROM") == ["python:3.11-slim AS build", "python:3.11-slim"]


def test_the_builder_can_compile_systemd_python() -> None:
    apt = " ".join(of("RUN", 0))
    for package in ("gcc", "libsystemd-dev", "pkg-config"):
        assert f" {package}" in apt, package
    assert "pip install" in apt


def test_the_runtime_has_libsystemd_and_no_build_tools() -> None:
    apt = " ".join(of("RUN", LAST_STAGE))
    assert "libsystemd0" in apt
    for package in ("gcc", "libsystemd-dev", "pkg-config"):
        assert package not in apt, package


def test_the_runtime_runs_as_a_non_root_user() -> None:
    users = of("USER", LAST_STAGE)
    assert users, "no USER: the container would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")


def test_every_copy_source_exists_and_enters_the_context() -> None:
    sources = copied_sources()
    assert sources, "nothing copied?"
    patterns = ignore_patterns()
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not ignored(source, patterns), f"{source} is excluded by {IGNORE.name}"
    for inside in ("app/cli/main.py", "app/core/config.py"):
        assert not ignored(inside, patterns), inside


@pytest.mark.parametrize(
    "path", [".logway/gateway/keys/k.pem", ".venv/bin/python", ".git/HEAD", "tests/conftest.py"]
)
def test_secrets_and_local_state_stay_out_of_the_context(path: str) -> None:
    assert ignored(path, ignore_patterns())


def test_the_ignore_matcher_follows_dockers_rules() -> None:
    patterns = ["*", "!app", "**/__pycache__"]
    assert not ignored("app/x.py", patterns)
    assert ignored("app/cli/__pycache__/x.pyc", patterns)
    assert ignored("bench/x.py", patterns)


def test_the_copied_context_builds_the_whole_package(tmp_path: Path) -> None:
    """What the build stage copies (after the ignore file) is enough for `pip install .`:
    built here as a wheel, which must hold every module of app/ and the `logway` script."""
    context = tmp_path / "context"
    patterns = ignore_patterns()
    for source in copied_sources():
        origin = ROOT / source
        files = [origin] if origin.is_file() else sorted(origin.rglob("*"))
        for path in files:
            relative = path.relative_to(ROOT).as_posix()
            if path.is_file() and not ignored(relative, patterns):
                (context / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, context / relative)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), "."],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (wheel,) = tmp_path.glob("logway-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        scripts = next(n for n in names if n.endswith("entry_points.txt"))
        assert "logway = app.cli.main:main" in archive.read(scripts).decode()
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "app").rglob("*.py")}
    assert modules - names == set()


def test_the_entry_point_is_the_logway_command_and_runs() -> None:
    entrypoint = json.loads(of("ENTRYPOINT")[-1])
    command = json.loads(of("CMD", LAST_STAGE)[-1])
    assert entrypoint == ["logway"]
    assert command == ["gateway"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "logway" in scripts
    logway = Path(sys.executable).with_name("logway")
    result = subprocess.run(
        [str(logway), *command, "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "--data-dir" in result.stdout


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for args in of("ENV", LAST_STAGE):
        for word in shlex.split(args):
            key, _, value = word.partition("=")
            env[key] = value
    return env


def test_image_env_names_real_settings_and_exposes_the_gateway_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = {k: v for k, v in image_env().items() if k.startswith("LOGWAY_")}
    assert set(env) <= {s.env for s in all_settings()}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = GatewaySettings()
    assert settings.host == "0.0.0.0"
    exposed = " ".join(of("EXPOSE", LAST_STAGE)).split()
    assert str(settings.port) in exposed
    volumes = json.loads(of("VOLUME", LAST_STAGE)[-1])
    assert str(settings.data_dir) in volumes


def healthcheck_argv() -> list[str]:
    (args,) = of("HEALTHCHECK", LAST_STAGE)
    exec_form = json.loads(args[args.index("CMD") + 3 :].strip())
    # The image's path to the script is /opt/logway/healthcheck.py (copied from deploy/).
    copy = next(a for a in of("COPY", LAST_STAGE) if "healthcheck.py" in a)
    source, target = shlex.split(copy)
    assert exec_form[1] == target
    return [sys.executable, str(ROOT / source)]


def run_healthcheck(port: int) -> subprocess.CompletedProcess[str]:
    env = {"LOGWAY_GATEWAY_PORT": str(port), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        healthcheck_argv(), capture_output=True, text=True, env=env, timeout=30, check=False
    )


def test_healthcheck_passes_only_when_the_gateway_is_ready(tmp_path: Path) -> None:
    # The script probes 127.0.0.1, as inside the container.
    with (
        MesosSimulator(SimCluster(), masters=[("127.0.0.1", 0)]) as sim,
        gateway(
            tmp_path / "ready", f"--mesos={sim.urls[0]}", password=PASSWORD, host="127.0.0.1"
        ) as base,
    ):
        port = int(base.rsplit(":", 1)[1])
        ok = wait_for("a ready gateway", lambda: run_healthcheck(port).returncode == 0 or None)
        assert ok
    with gateway(
        tmp_path / "unready", f"--mesos={DEAD_MESOS}", password=PASSWORD, host="127.0.0.1"
    ) as base:
        result = run_healthcheck(int(base.rsplit(":", 1)[1]))
        assert result.returncode == 1
        assert "503" in result.stdout
        assert "cluster state unusable" in result.stdout
    nobody = run_healthcheck(free_port("127.0.0.1"))
    assert nobody.returncode == 1
    assert "refused" in nobody.stdout.lower()
