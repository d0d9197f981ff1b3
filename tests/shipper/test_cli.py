from __future__ import annotations

import pytest

from app.shipper.cli import main

IDS = ["--agent-id", "a", "--framework-id", "f", "--executor-id", "e", "--container-id", "c"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (IDS[:2], "the following arguments are required: --framework-id"),
        (["--journal-namespace", "../etc", *IDS], "invalid journal namespace"),
        (["--journal-namespace", "n", "--socket", "/s", *IDS], "not allowed with argument"),
    ],
)
def test_bad_arguments_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "--journal-namespace" in capsys.readouterr().out
