"""The in-process chain, the KFP tasks' artifact records, and the parameters' one declaration."""

import json
from dataclasses import fields

import pytest

from components import bundle
from components.artifacts import RunArtifacts
from components.config import ConfigError, load_settings
from components.params import PipelineParams
from components.steps import STEPS, run_steps, task_artifacts


def test_run_steps_writes_every_artifact_and_registers(tmp_path):
    settings = load_settings({"CHURN_HOME": str(tmp_path / "home")})
    params = PipelineParams(rows=1500, seed=3, model_type="logreg", search_budget=1, cv_folds=2, promote=True)
    seen: list[str] = []
    artifacts = run_steps(params, tmp_path / "run", settings, progress=seen.append)

    assert artifacts == RunArtifacts.in_dir(tmp_path / "run")
    for f in fields(RunArtifacts):
        assert getattr(artifacts, f.name).exists(), f.name
    assert [m for m in seen if m in STEPS] == list(STEPS)  # each step announced once, in order
    meta = bundle.verify(artifacts.bundle)
    assert meta.model_type == "logreg" and meta.registry_version is None
    registration = json.loads(artifacts.registration.read_text())
    assert registration["version"] == "1" and registration["gate"]["verdict"] == "passed"
    profile = json.loads(artifacts.profile.read_text())
    assert profile["source_uri"] == params.source_uri() == "synthetic://?rows=1500&seed=3"
    assert meta.data_hash == profile["data_hash"]


def test_a_task_record_holds_only_what_kfp_gave_the_task(tmp_path):
    artifacts = task_artifacts(model=str(tmp_path / "model"), test=tmp_path / "test")
    assert artifacts.model == tmp_path / "model" and artifacts.test == tmp_path / "test"
    with pytest.raises(FileNotFoundError, match="not-an-input-of-this-task"):
        artifacts.train.read_bytes()


def test_every_parameter_is_declared_once_with_its_help():
    for f in fields(PipelineParams):
        assert f.metadata["help"], f.name
    params = PipelineParams(seed=5, model_type="logreg", search_budget=3, offer_cost=20.0, min_pr_auc=0.3)
    assert (params.train_config().seed, params.train_config().model_type) == (5, "logreg")
    assert params.train_config().search_budget == 3 and params.ingest_config().seed == 5
    assert params.business_config().offer_cost == 20.0 and params.gate_config().min_pr_auc == 0.3
    assert params.source_uri() == "synthetic://?rows=50000&seed=5"
    assert PipelineParams(data_uri="s3://b/k.csv").source_uri() == "s3://b/k.csv"
    with pytest.raises(ConfigError, match="cv_folds must be >= 2"):
        PipelineParams(cv_folds=1)


def test_the_gates_disjoint_row_minimum_is_a_pipeline_parameter():
    assert PipelineParams(min_disjoint_rows=50).gate_config().min_disjoint_rows == 50
    assert "min_disjoint_rows" in PipelineParams().as_arguments()
    with pytest.raises(ValueError, match="min_disjoint_rows"):
        PipelineParams(min_disjoint_rows=0)
