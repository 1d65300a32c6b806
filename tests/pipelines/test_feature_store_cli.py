"""The feature-store commands, run through ``churn`` (pipelines.cli.main) for real.

``churn data history`` -> ``churn features apply --history`` -> the same steps ``churn run
--features feast`` runs (in process, components.steps.run_steps, to keep the suite fast; the KFP
path reads the same ``feast://`` source in its ingest task) -> the registered version's
``feature_lineage`` tag names the views, their definitions and the as-of range.
"""

from __future__ import annotations

import json

import mlflow
import pandas as pd
import pytest

from components import feature_store, history
from components.config import load_settings
from components.params import PipelineParams
from components.steps import run_steps
from pipelines.cli import build_parser, main
from pipelines.feature_store_cli import feature_source_uri


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CHURN_HOME", str(tmp_path / "home"))
    for name in ("CHURN_FEATURE_STORE", "CHURN_FEATURE_HOME", "CHURN_FEATURE_DATA", "CHURN_FEATURE_REGISTRY"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_history_apply_and_a_run_from_the_store_record_the_feature_lineage(home, capsys):
    out = home / "hist"
    assert main(["data", "history", "--months", "7", "--customers", "700", "--out", str(out)]) == 0
    assert "labels" in capsys.readouterr().out
    assert main(["features", "apply", "--history", str(out)]) == 0
    args = build_parser().parse_args(["run", "--features", "feast", "--labels", str(out / "labels.parquet")])
    source = feature_source_uri(args)
    params = PipelineParams(data_uri=source, search_budget=1, cv_folds=2, min_pr_auc=0.0, min_roc_auc=0.5)
    settings = load_settings()
    artifacts = run_steps(params, home / "run", settings)
    profile = json.loads(artifacts.profile.read_text())
    lineage = profile[feature_store.FEATURE_LINEAGE]
    labels = pd.read_parquet(out / "labels.parquet")
    assert lineage["as_of_min"] == labels[history.AS_OF].min().isoformat()
    assert profile["rows"] == labels["customerID"].nunique()
    registration = json.loads(artifacts.registration.read_text())
    client = mlflow.MlflowClient(settings.mlflow_tracking_uri)
    tags = client.get_model_version(registration["registered_model"], str(registration["version"])).tags
    assert json.loads(tags["feature_lineage"]) == lineage
    assert tags["source_uri"] == source


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--features", "feast"], "--labels"),
        (["run", "--labels", "x.parquet"], "--features feast"),
        (["run", "--features", "feast", "--labels", "x.parquet", "--data", "y.csv"], "drop --data"),
    ],
)
def test_feature_source_usage_errors_name_the_option(home, capsys, argv, message):
    assert main(argv) == 2
    assert message in capsys.readouterr().err.strip().splitlines()[-1]


def test_labels_that_do_not_exist_are_refused_before_the_run(home, capsys):
    code = main(["run", "--features", "feast", "--labels", str(home / "missing.parquet")])
    assert code == 2
    assert not (home / "home" / "runs").exists()
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "missing.parquet" in last and "no such file" in last
