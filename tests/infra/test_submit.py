"""`make submit`: the per-environment run parameters are parameters of the compiled pipeline,
and the command it runs is the documented `kfp run create` with the pushed components image."""

from __future__ import annotations

import os
import re
import shlex
import shutil

import pytest
import yaml

from tests.infra.tools import REPO, explain, run

OVERLAYS = sorted(p.parent for p in (REPO / "manifests" / "overlays").glob("*/pipeline.mk"))
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/churn-dev/components:test"


def make_dry_run(*args: str) -> str:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    result = run(["make", "-n", "--no-print-directory", *args], cwd=REPO)
    assert result.returncode == 0, explain(result)
    return result.stdout.replace("\\\n", " ")  # join continued lines


def run_create_params(overlay) -> dict[str, str]:
    """key=value arguments `make submit ENV=<overlay>` passes to `kfp run create`."""
    text = make_dry_run("submit", f"ENV={overlay.name}", "KFP_ENDPOINT=https://kfp.invalid")
    words = shlex.split(text)
    params = words[words.index("build/churn_pipeline.yaml", words.index("create")) + 1 :]
    return dict(word.split("=", 1) for word in params)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> dict:
    churn = REPO / ".venv" / "bin" / "churn"
    if not churn.exists():
        pytest.skip("the churn CLI is not installed (make venv)")
    out = tmp_path_factory.mktemp("compile") / "churn_pipeline.yaml"
    env = dict(os.environ, CHURN_COMPONENTS_IMAGE=IMAGE)
    result = run([str(churn), "pipeline", "compile", "--out", str(out)], env=env, timeout=300)
    assert result.returncode == 0, explain(result)
    return yaml.safe_load(out.read_text())


def test_compiled_pipeline_uses_the_components_image(compiled):
    assert compiled["pipelineInfo"]["name"] == "churn-training"
    executors = compiled["deploymentSpec"]["executors"].values()
    assert {executor["container"]["image"] for executor in executors} == {IMAGE}


@pytest.mark.parametrize("overlay", OVERLAYS, ids=[p.name for p in OVERLAYS])
def test_submit_parameters_exist_in_the_pipeline(compiled, overlay):
    accepted = set(compiled["root"]["inputDefinitions"]["parameters"])
    params = run_create_params(overlay)
    assert params, "PIPELINE_PARAMS is empty"
    assert set(params) <= accepted, f"unknown parameters: {set(params) - accepted}"
    assert params["model_type"] in {"xgboost", "logreg", "random_forest"}


def test_submit_runs_the_documented_kfp_command():
    text = make_dry_run("submit", "ENV=prod", "KFP_ENDPOINT=https://kfp.invalid", "ECR_REGISTRY=reg.example")
    assert re.search(r"CHURN_COMPONENTS_IMAGE=reg\.example/churn-prod/components:\d+\.\d+\.\d+\S*-\w+ ", text)
    assert re.search(
        r"kfp --endpoint https://kfp\.invalid\s+run create -e churn-prod -r churn-prod-\S+ ", text
    )
    assert "data_uri=s3://churn-prod-data-" in text, "prod reads its data bucket from platform.env"
