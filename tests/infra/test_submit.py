"""`make submit`: the per-environment run parameters are parameters of the compiled pipeline,
and the command it runs is the documented `kfp run create` with the pushed components image."""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil

import pytest
import yaml

from tests.infra.tools import REPO, explain, run

OVERLAYS = sorted(p.parent for p in (REPO / "manifests" / "overlays").glob("*/pipeline.mk"))
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/churn-dev/components:test"
SHA256 = "0" * 64


def data_uri(env: str, key: str = f"sha256={SHA256}/telco.csv") -> str:
    return f"DATA_URI=s3://churn-{env}-data-111122223333/churn/raw/{key}"


def make_dry_run(*args: str) -> str:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    result = run(["make", "-n", "--no-print-directory", *args], cwd=REPO)
    assert result.returncode == 0, explain(result)
    return result.stdout.replace("\\\n", " ")  # join continued lines


def run_create_params(overlay) -> dict[str, str]:
    """key=value arguments `make submit ENV=<overlay>` passes to `kfp run create`."""
    text = make_dry_run(
        "submit", f"ENV={overlay.name}", "KFP_ENDPOINT=https://kfp.invalid", data_uri(overlay.name)
    )
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
    return next(yaml.safe_load_all(out.read_text()))  # the pipeline spec; then its platform spec


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
    text = make_dry_run(
        "submit", "ENV=prod", "KFP_ENDPOINT=https://kfp.invalid", "ECR_REGISTRY=reg.example", data_uri("prod")
    )
    assert re.search(r"CHURN_COMPONENTS_IMAGE=reg\.example/churn-prod/components:\d+\.\d+\.\d+\S*-\w+ ", text)
    assert re.search(
        # the namespace explicitly: a multi-user KFP would otherwise pick the profile from the token
        r"kfp --endpoint https://kfp\.invalid --namespace kubeflow\s+"
        r"run create -e churn-prod -r churn-prod-\S+ ",
        text,
    )
    assert f"data_uri=s3://churn-prod-data-111122223333/churn/raw/sha256={SHA256}/telco.csv " in text


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_submit_refuses_data_that_is_not_content_addressed(env):
    """A fixed key is overwritten by the next upload; its old data_hash could not be reproduced."""
    for given in (data_uri(env, "telco.csv"), "DATA_URI="):
        result = run(
            ["make", "-n", "submit", f"ENV={env}", "KFP_ENDPOINT=https://kfp.invalid", given], cwd=REPO
        )
        assert result.returncode != 0 and "make data-upload" in result.stderr, explain(result)


def test_data_upload_writes_under_the_content_hash(tmp_path):
    data = tmp_path / "telco.csv"
    data.write_text("customerID,Churn\n1,No\n")
    digest = hashlib.sha256(data.read_bytes()).hexdigest()
    makefiles = ["-f", "Makefile"]
    if "include platform/platform.mk" not in (REPO / "Makefile").read_text():
        makefiles += ["-f", "platform/platform.mk"]
    result = run(["make", "-n", *makefiles, "data-upload", "ENV=prod", f"DATA_FILE={data}"], cwd=REPO)
    assert result.returncode == 0, explain(result)
    assert "s3://churn-prod-data-111122223333/churn/raw/sha256=$(sha256sum" in result.stdout
    # The recipe itself, with the upload left out (no AWS here), names the object by the file's hash.
    done = run(["sh", "-c", result.stdout.replace("aws s3 cp --only-show-errors", "true")], cwd=REPO)
    assert f"DATA_URI=s3://churn-prod-data-111122223333/churn/raw/sha256={digest}/telco.csv" in done.stdout, (
        explain(done)
    )
