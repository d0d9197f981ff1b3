"""deploy/README.md names every file of deploy/, and every file it names exists."""

from __future__ import annotations

import re

from tests.deploy.catalog import DEPLOY

README = DEPLOY / "README.md"


def test_readme_and_deploy_dir_agree() -> None:
    text = README.read_text()
    named = set(re.findall(r"`([\w.-]+\.(?:service|example|json|py|dockerignore))`", text))
    named |= set(re.findall(r"`(Dockerfile)`", text))
    present = {p.name for p in DEPLOY.iterdir() if p.is_file() and p != README}
    assert present - named == set(), "files README.md does not mention"
    assert named - present == set(), "files README.md names that do not exist"
