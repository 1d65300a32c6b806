"""GitHub workflows: schema-valid, actionlint and checkov clean, and wired as promised."""

from __future__ import annotations

import re
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
    """No workflow-wide token scopes: each job asks for what it needs, and only a job that assumes
    an AWS role through OIDC may mint an id-token."""
    workflow = yaml.safe_load(path.read_text())
    assert workflow["permissions"] == {}, "the workflow-wide token must have no scopes"
    for name, job in workflow["jobs"].items():
        assert job.get("timeout-minutes"), f"{name}: set timeout-minutes"
        permissions = job["permissions"]
        assert permissions.get("contents") == "read" and set(permissions) <= {"contents", "id-token"}, name
        assumes_role = "configure-aws-credentials" in steps_text(job)
        assert (permissions.get("id-token") == "write") == assumes_role, f"{name}: id-token only with OIDC"


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_actions_pinned_by_commit_sha(path: Path):
    """A tag can be moved to another commit (trivy-action's were, in 2026); a SHA cannot."""
    uses = [
        step["uses"] for job in load(path.name)["jobs"].values() for step in job["steps"] if "uses" in step
    ]
    assert uses
    for ref in uses:
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", ref), f"{ref}: pin the action by commit SHA"
    for line in path.read_text().splitlines():
        if "uses:" in line:
            assert re.search(r"@[0-9a-f]{40} # v\d", line), f"{line.strip()}: name the release after the SHA"


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_checkouts_drop_the_token_and_run_blocks_expand_nothing(path: Path):
    for job in load(path.name)["jobs"].values():
        for step in job["steps"]:
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step.get("with", {}).get("persist-credentials") is False, "persist-credentials: false"
            # Values reach a shell through env:, never pasted into the script (template injection).
            assert "${{" not in str(step.get("run", "")), f"expression inside run: {step.get('run')}"


def test_zizmor_finds_nothing():
    """zizmor (offline audits: unpinned uses, excessive permissions, credential persistence,
    template injection); its exit code is non-zero on any finding."""
    zizmor = require_tool("zizmor", "make tools (zizmor is in .venv-tools)")
    result = run([zizmor, "--offline", "--no-progress", "--format", "plain", str(WORKFLOWS)])
    assert result.returncode == 0, explain(result)


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


def test_cd_promotes_the_scanned_images_by_digest():
    """CD builds once, scans exactly what it built, pushes it, and submits by digest: the image that
    runs is the image that was scanned."""
    workflow = load("cd.yml")
    assert triggers(workflow)["push"]["branches"] == ["main"]
    images, submit = workflow["jobs"]["images"], workflow["jobs"]["submit"]
    order = [step.get("run", step.get("uses", "")) for step in images["steps"]]
    build = next(i for i, s in enumerate(order) if "make images-build" in s)
    scans = [i for i, s in enumerate(order) if "trivy-action" in s]
    push = next(i for i, s in enumerate(order) if "make push" in s)
    assert len(scans) == 2 and build < min(scans) and max(scans) < push, order
    assert "make images " not in "\n".join(order), "`make images` would rebuild before pushing"
    assert images["outputs"]["components"] == "${{ steps.digests.outputs.components }}"
    assert "RepoDigests" in steps_text(images)
    assert submit["needs"] == "images" and "make submit" in steps_text(submit)
    submit_env = next(s for s in submit["steps"] if "make submit" in s.get("run", ""))["env"]
    assert submit_env["COMPONENTS_IMAGE"] == "${{ needs.images.outputs.components }}"
    # Cloud access through GitHub OIDC only: no long-lived AWS keys in the workflow.
    assert "AWS_SECRET_ACCESS_KEY" not in (WORKFLOWS / "cd.yml").read_text()


@pytest.mark.parametrize("name", ["cd.yml", "retrain.yml"])
def test_submit_runs_inside_the_cluster(name):
    """The API and KFP endpoints are private: submits run on the runner set the bootstrap installs
    in the environment's cluster and call KFP's in-cluster service."""
    workflow = load(name)
    job = workflow["jobs"]["submit"]
    default = "dev" if name == "cd.yml" else "prod"
    assert job["runs-on"] == f"churn-${{{{ inputs.environment || '{default}' }}}}"
    labels = yaml.safe_load((WORKFLOWS.parent / "actionlint.yaml").read_text())["self-hosted-runner"][
        "labels"
    ]
    assert set(labels) == {"churn-dev", "churn-staging", "churn-prod"}
    endpoint = {**workflow.get("env", {}), **job.get("env", {})}["KFP_ENDPOINT"]
    assert endpoint == "http://ml-pipeline.kubeflow.svc.cluster.local:8888"


def test_retrain_is_scheduled_and_submits():
    workflow = load("retrain.yml")
    assert triggers(workflow)["schedule"], "retrain.yml needs a schedule"
    assert "make submit" in steps_text(workflow["jobs"]["submit"])
