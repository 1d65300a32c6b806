import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.config import ConfigError, load_settings
from components.params import PipelineParams
from pipelines.remote import compile_pipeline

REPO = Path(__file__).resolve().parents[2]
TASKS = {"ingest-op", "train-op", "evaluate-op", "export-op", "register-op", "deploy-op"}


def compiled(path: Path) -> tuple[dict, dict]:
    """The pipeline spec and the Kubernetes platform spec (kfp-kubernetes' second YAML document)."""
    spec, platform = yaml.safe_load_all(path.read_text())
    return spec, platform["platforms"]["kubernetes"]


def executor_of(spec: dict, task: str) -> str:
    return spec["root"]["dag"]["tasks"][task]["componentRef"]["name"].replace("comp-", "exec-", 1)


def test_compile_is_byte_identical_across_processes(tmp_path):
    first = compile_pipeline(tmp_path / "a.yaml")
    subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "pipeline", "compile", "--out", str(tmp_path / "b.yaml")],
        check=True,
        capture_output=True,
    )
    assert first.read_bytes() == (tmp_path / "b.yaml").read_bytes()


def test_compiled_pipeline_has_every_step_and_parameter(tmp_path):
    spec, _ = compiled(compile_pipeline(tmp_path / "p.yaml"))
    assert spec["pipelineInfo"]["name"] == "churn-training"
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert set(params) == set(PipelineParams().as_arguments())
    assert params["rows"]["defaultValue"] == PipelineParams.rows
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) == TASKS | {"condition-branches-1"}  # the search branch (test_search_fan_out.py)
    images = {e["container"]["image"] for e in spec["deploymentSpec"]["executors"].values()}
    assert len(images) == 1 and images.pop().startswith("ghcr.io/churn-mlops/components:")


def test_every_task_gets_the_platform_configuration_from_the_configmap(tmp_path):
    """Each step's pod gets every key of the overlay's `churn-platform` ConfigMap as an env var
    (no Secret: none of its keys is secret, S3 is IRSA), and is marked as a pipeline step so a
    pod without that configuration stops instead of registering into a SQLite file."""
    spec, platform = compiled(compile_pipeline(tmp_path / "p.yaml"))
    configmaps = [
        doc
        for doc in yaml.safe_load_all((REPO / "manifests" / "base" / "pipeline-config.yaml").read_text())
        if doc["metadata"]["name"] == "churn-platform"
    ]
    (configmap,) = configmaps
    for task in TASKS:
        executor = executor_of(spec, task)
        (source,) = platform["deploymentSpec"]["executors"][executor]["configMapAsEnv"]
        assert source["configMapName"] == "churn-platform"
        assert {(k["configMapKey"], k["envVar"]) for k in source["keyToEnv"]} == {
            (key, key) for key in configmap["data"]
        }, task
        env = {
            e["name"]: e["value"] for e in spec["deploymentSpec"]["executors"][executor]["container"]["env"]
        }
        assert env["CHURN_PLATFORM_CONFIG"] == "churn-platform", task


POD = {"KUBERNETES_SERVICE_HOST": "10.100.0.1", "CHURN_PLATFORM_CONFIG": "churn-platform"}


def test_a_pipeline_step_in_a_pod_without_the_configuration_fails_loudly(tmp_path):
    with pytest.raises(ConfigError) as failure:
        load_settings({**POD, "CHURN_HOME": str(tmp_path), "AWS_REGION": "eu-west-1"})

    message = str(failure.value)
    assert "MLFLOW_TRACKING_URI" in message and "CHURN_MODEL_STORE_URI" in message
    assert "churn-platform" in message
    with pytest.raises(ConfigError, match="CHURN_MODEL_STORE_URI") as failure:
        load_settings({**POD, "MLFLOW_TRACKING_URI": "http://mlflow:5000"})
    assert "MLFLOW_TRACKING_URI" not in str(failure.value)


def test_a_configured_pipeline_pod_and_other_pods_load_their_settings():
    """The configured step gets the cluster's values; serving pods and CI runner pods (not
    pipeline steps) keep their own defaults; a laptop keeps the local SQLite registry."""
    settings = load_settings(
        {**POD, "MLFLOW_TRACKING_URI": "http://mlflow:5000", "CHURN_MODEL_STORE_URI": "s3://m/churn/models"}
    )
    assert (settings.mlflow_tracking_uri, settings.model_store_uri) == (
        "http://mlflow:5000",
        "s3://m/churn/models",
    )
    assert load_settings({"KUBERNETES_SERVICE_HOST": "10.100.0.1"}).mlflow_tracking_uri.startswith("sqlite:")
    assert load_settings({"CHURN_PLATFORM_CONFIG": "churn-platform"}).mlflow_tracking_uri.startswith(
        "sqlite:"
    )
