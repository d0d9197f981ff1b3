"""The search bench section runs end to end on a tiny journal: both readers find every
match, and the follower gets every matching probe. No timing thresholds here; `make bench`
(1,000,000 entries) is where the figures are judged."""

from __future__ import annotations

import re

import pytest

from bench import search
from tests.conftest import journald_available


@pytest.mark.skipif(not journald_available(), reason="needs root and systemd-journald")
def test_search_section_compares_with_journalctl_and_follows(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search, "READER_HOST", "127.0.0.121")  # this engineer's range
    verdicts = search.run(1, entries=5000, probes=100)
    out = capsys.readouterr().out
    assert len(verdicts) == 2, out
    rows = re.findall(r"^(logway grep=|journalctl --grep)\S* .*?\s+([\d,]+)\s+\d", out, re.M)
    assert [matches for _, matches in rows] == ["5", "5"], out
    assert "received 20/20" in out
    assert "grep= range reads took: index x1" in out  # journald's index, not the scan
    assert verdicts[1].target == "follow grep= p99 < 50 ms"
    assert re.fullmatch(r"\d+\.\d ms", verdicts[1].measured), verdicts[1]
