"""The gateway bench section sets up its one-agent cluster (journald, Mesos simulator,
gateway, node reader, nginx) and produces figures: a smoke test with tiny durations and no
timing thresholds. `make bench` is where the figures are judged."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from bench import gateway, nginx
from bench.report import PASS
from bench.servers import ServerError
from tests.conftest import journald_available


def _nginx_installed() -> bool:
    try:
        nginx.nginx_binary()
    except ServerError:
        return False
    return True


TINY = gateway.Plan(entries=2000, runs=1, seconds=0.3, warmup=0.1, connections=4, rounds=20)
RATIO = re.compile(r"\d+\.\d\dx")
MILLIS = re.compile(r"-?\d+\.\d\d ms")


@pytest.mark.skipif(not journald_available(), reason="needs root and systemd-journald")
@pytest.mark.skipif(not _nginx_installed(), reason="needs nginx (make apt)")
def test_gateway_section_measures_every_target(capsys: pytest.CaptureFixture[str]) -> None:
    verdicts = {v.target: v for v in gateway.run(TINY)}
    out = capsys.readouterr().out

    ratios = [v for name, v in verdicts.items() if name.startswith("gateway / ")]
    assert len(ratios) == 2
    assert all(RATIO.fullmatch(v.measured) for v in ratios), ratios
    latencies = [v for name, v in verdicts.items() if "added latency" in name]
    assert len(latencies) == 2
    assert all(MILLIS.fullmatch(v.measured) for v in latencies), latencies
    # Target 4: the gateway's p99 under load, at the plan's connections, against its bound.
    loaded = verdicts[
        f"gateway p99, small ranges, {TINY.connections} clients at once "
        f"< {gateway.LOADED_P99_MS:g} ms"
    ]
    assert MILLIS.fullmatch(loaded.measured), loaded
    assert "CPU per OK reply (medians): gateway " in out
    # Every small range came back 200 with its 10 entries, every full range complete.
    complete = verdicts["gateway section: every reply OK and complete"]
    assert complete.outcome == PASS, out
    for label in (gateway.GATEWAY, gateway.NGINX, gateway.DIRECT, gateway.CEILING):
        assert label in out


def test_missing_nginx_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(nginx, "NGINX_SBIN", tmp_path / "no-nginx")
    with pytest.raises(ServerError, match=r"nginx is not installed.*make install"):
        nginx.nginx_binary()
