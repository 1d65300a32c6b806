"""GitHub workflows: schema-valid, actionlint and checkov clean, and wired as promised."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.infra.tools import REPO, explain, require_tool, run, run_checkov

WORKFLOWS = REPO / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))


def load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def triggers(workflow: dict) -> dict:
    # YAML 1.1 reads the bare key `on` as the boolean True.
    return workflow.get("on", workflow.get(True))


def steps_text(job: dict) -> str:
    return "\n".join(str(step.get("run", "")) + str(step.get("uses", "")) for step in job["steps"])


def test_the_three_workflows_exist():
    assert {p.name for p in FILES} >= {"ci.yml", "cd.yml", "retrain.yml"}


def test_schema_valid():
    check = require_tool("check-jsonschema", "pip install check-jsonschema (the dev extra)")
    result = run([check, "--builtin-schema", "vendor.github-workflows", *map(str, FILES)])
    assert result.returncode == 0, explain(result)


def test_actionlint_clean():
    actionlint = require_tool("actionlint")
    result = run([actionlint, "-no-color", *map(str, FILES)])
    assert result.returncode == 0, explain(result)


def test_checkov_github_actions_finds_nothing():
    result = run_checkov("github_actions", "-d", str(WORKFLOWS.parent))
    assert result.returncode == 0, explain(result)


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_least_privilege_and_bounded(path: Path):
    workflow = yaml.safe_load(path.read_text())
    permissions = workflow["permissions"]
    assert permissions.get("contents") == "read", "default token must be read-only"
    assert set(permissions) <= {"contents", "id-token"}, permissions
    for name, job in workflow["jobs"].items():
        assert job.get("timeout-minutes"), f"{name}: set timeout-minutes"


def test_ci_runs_tests_compile_terraform_and_image_scan():
    jobs = load("ci.yml")["jobs"]
    text = "\n".join(steps_text(job) for job in jobs.values())
    for needle in (
        "make test",
        "make compile",
        "terraform fmt -check",
        "make infra-test",
        "trivy-action",
        "docker build",
    ):
        assert needle in text, f"ci.yml lacks {needle!r}"


def test_cd_pushes_images_then_submits_on_main():
    workflow = load("cd.yml")
    assert triggers(workflow)["push"]["branches"] == ["main"]
    jobs = workflow["jobs"]
    assert "make images" in steps_text(jobs["images"])
    assert jobs["submit"]["needs"] == "images"
    assert "make submit" in steps_text(jobs["submit"])
    # Cloud access through GitHub OIDC only: no long-lived AWS keys in the workflow.
    assert "AWS_SECRET_ACCESS_KEY" not in (WORKFLOWS / "cd.yml").read_text()


def test_retrain_is_scheduled_and_submits():
    workflow = load("retrain.yml")
    assert triggers(workflow)["schedule"], "retrain.yml needs a schedule"
    assert "make submit" in steps_text(workflow["jobs"]["submit"])
