"""The merged bench section sets up its three-agent cluster (journald namespaces, node
readers, Mesos simulator, gateway) and produces its figures: a smoke test at a tiny rate,
with no timing thresholds. `make bench` is where the figures are judged."""

from __future__ import annotations

import re

import pytest

from bench import merged
from bench.report import PASS
from tests.conftest import journald_available

TINY = merged.Plan(rate=200, seconds=1.0, runs=1, grace=30.0)
MILLIS = re.compile(r"\d+\.\d ms")


@pytest.mark.skipif(not journald_available(), reason="needs root and systemd-journald")
def test_merged_section_measures_latency_completeness_and_cpu(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # This engineer's test addresses (127.0.0.81-.89), not the bench's own.
    monkeypatch.setattr(merged, "READER_HOSTS", ("127.0.0.81", "127.0.0.82", "127.0.0.83"))
    monkeypatch.setattr(merged, "MESOS_HOST", "127.0.0.88")
    monkeypatch.setattr(merged, "GATEWAY_HOST", "127.0.0.89")
    verdicts = {v.target: v for v in merged.run(TINY)}
    out = capsys.readouterr().out
    assert len(verdicts) == 6, verdicts
    complete = verdicts["merged stream: no entry lost or duplicated"]
    assert complete.outcome == PASS, out
    assert complete.measured == "lost 0, duplicated 0"
    latencies = [v for name, v in verdicts.items() if " latency, " in name]
    assert len(latencies) == 4  # p50 and p99, all agents writing and one silent
    assert all(MILLIS.fullmatch(v.measured) for v in latencies), latencies
    cpu = verdicts["merged stream: gateway CPU per 1,000 entries/s"].measured
    assert re.fullmatch(r"\d+\.\d\d% of a core", cpu), cpu
    lines = re.findall(
        r"run 1, .*: sent (\d+) at [\d,]+/s, received (\d+), lost 0, duplicated 0", out
    )
    assert len(lines) == 2, out
    assert all(int(sent) > 0 and sent == received for sent, received in lines), lines
