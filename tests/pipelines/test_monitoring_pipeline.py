"""The churn-monitoring pipeline: compiled shape, and a kfp.local run on a real server's payload log
that retrains once (nested churn-training under dsl.If) and, run again, does not."""

from __future__ import annotations

import json
import uuid

import pytest
import yaml
from mlflow import MlflowClient

from components.config import load_settings
from components.retrain_claims import list_records
from components.schema import FEATURE_NAMES, FEATURES
from components.synthetic import Drift, generate
from pipelines.monitoring_pipeline import compile_monitoring_pipeline, run_monitoring_local
from pipelines.resources import POOL_LABEL
from serving.examples import v2_request
from tests.support.bundles import register_run
from tests.support.model_server import start_model_server


def test_the_compiled_pipeline_monitors_decides_and_nests_training_under_a_condition(tmp_path):
    docs = list(yaml.safe_load_all(compile_monitoring_pipeline(tmp_path / "m.yaml", "prod").read_text()))
    spec, platform = docs
    assert spec["pipelineInfo"]["name"] == "churn-monitoring"
    tasks = spec["root"]["dag"]["tasks"]
    assert {t["taskInfo"]["name"] for t in tasks.values()} == {"monitor", "retrain-decision", "retrain-once"}
    condition = next(t for t in tasks.values() if t["taskInfo"]["name"] == "retrain-once")
    assert "retrain-decision-op-Output" in condition["triggerPolicy"]["condition"]
    nested = spec["components"][condition["componentRef"]["name"]]["dag"]["tasks"]
    (training,) = nested.values()
    assert training["taskInfo"]["name"] == "churn-training"
    assert set(spec["components"][training["componentRef"]["name"]]["dag"]["tasks"]) >= {
        "ingest-op",
        "register-op",
    }
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert executors["exec-monitor-op"]["nodeSelector"]["labels"] == {POOL_LABEL: "system"}
    monitor = spec["deploymentSpec"]["executors"]["exec-monitor-op"]["container"]["resources"]
    assert monitor["memoryLimit"] == pytest.approx(2 * 1024**3 / 1e9, rel=1e-3)
    inputs = spec["root"]["inputDefinitions"]["parameters"]
    assert "defaultValue" not in inputs["log_uri"] and inputs["cooldown_hours"]["defaultValue"] == 24.0


@pytest.fixture
def served_log(trained_run, tmp_path, monkeypatch):
    """``trained_run`` registered (its own home and model name) and served; a drifted stream through it."""
    monkeypatch.setenv("CHURN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CHURN_REGISTERED_MODEL", f"churn-{uuid.uuid4().hex[:6]}")
    summary = register_run(trained_run, load_settings())
    server = start_model_server(
        trained_run.artifacts.bundle,
        tmp_path / "server.log",
        extra_args=["--payload_log_uri", str(tmp_path / "payload"), "--payload_log_flush_seconds", "1"],
    )
    try:
        rows = generate(2_000, seed=61, drift=Drift(monthly_charges_scale=1.3))[list(FEATURE_NAMES)]
        records = rows.to_dict("records")
        for i in range(0, len(records), 250):
            answer = server.post(
                "/v2/models/churn/infer", json=v2_request(FEATURES, records[i : i + 250], f"m{i}")
            )
            assert answer.status_code == 200, answer.text
    finally:
        server.stop()
    return tmp_path / "payload", summary


def test_a_kfp_local_run_retrains_once_and_a_second_run_does_not(served_log, tmp_path):
    log, summary = served_log
    name = summary["registered_model"]
    arguments = {
        "log_uri": str(log),
        "last_hours": 1.0,
        "retrain_data_uri": "synthetic://?rows=2500&seed=99",
        "search_budget": 1,
        "cv_folds": 2,
        "mlflow": True,
    }
    outcome = run_monitoring_local(tmp_path / "kfp1", **arguments)
    assert (outcome["action"], outcome["kind"]) == ("submitted", "drift")
    assert any("MonthlyCharges" in reason for reason in outcome["reasons"])
    client = MlflowClient(load_settings().mlflow_tracking_uri)
    versions = {str(mv.version): mv for mv in client.search_model_versions(f"name = '{name}'")}
    assert set(versions) == {"1", "2"} and versions["2"].tags["gate_verdict"] in (
        "passed",
        "failed",
        "refused",
    )

    again = run_monitoring_local(tmp_path / "kfp2", **arguments)
    assert again["action"] == "skipped" and "already claimed" in again["message"]
    assert {str(mv.version) for mv in client.search_model_versions(f"name = '{name}'")} == {"1", "2"}
    (record,) = list_records(load_settings(), name)
    assert (record.status, record.kind, record.model_version) == ("submitted", "drift", "1")
    result = json.loads(next((tmp_path / "kfp1").glob("churn-monitoring-*/monitor-op/result")).read_text())
    assert result["model"]["registry_version"] == "1" and result["status"] == "alert"
