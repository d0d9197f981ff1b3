"""deploy/Dockerfile read as instructions, for the deploy tests (no docker here)."""

from __future__ import annotations

from dataclasses import dataclass

from tests.deploy.catalog import DEPLOY

DOCKERFILE = DEPLOY / "Dockerfile"


@dataclass(frozen=True)
class Instruction:
    stage: int
    name: str
    args: str


def instructions(text: str) -> list[Instruction]:
    found: list[Instruction] = []
    stage = -1
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        name, _, args = line.partition(" ")
        if name.upper() == "FROM":
            stage += 1
        found.append(Instruction(stage, name.upper(), args.strip()))
    return found


PARSED = instructions(DOCKERFILE.read_text())
LAST_STAGE = max(i.stage for i in PARSED)


def of(name: str, stage: int | None = None) -> list[str]:
    return [i.args for i in PARSED if i.name == name and (stage is None or i.stage == stage)]
