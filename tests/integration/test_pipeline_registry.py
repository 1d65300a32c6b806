"""The whole pipeline (kfp.local) registering against the real MLflow server and S3 model store."""

from __future__ import annotations

import pytest

from components.bundle import BUNDLE_FILES, bundle_digest, read_metadata
from components.config import load_settings
from components.registry import connect
from components.storage import parse_s3
from components.synthetic import generate, write_table
from tests.integration.env import server_env
from tests.support.bundles import register_run

pytestmark = pytest.mark.integration


def test_pipeline_run_compares_with_the_servers_champion_and_publishes(
    good, s3, mlflow_server, tmp_path, monkeypatch
):
    from components.params import PipelineParams
    from pipelines.local import run_local

    env = server_env(s3, mlflow_server.url, tmp_path / "home")
    for key, value in env.items():  # kfp.local runs each step in a subprocess: via the environment
        monkeypatch.setenv(key, value)
    settings = load_settings(env)
    register_run(good, settings)  # v1: the champion the pipeline must beat on ITS test split
    # the same data lineage as the champion (a file of the user's, not the synthetic demo)
    data = write_table(generate(3000, seed=11), tmp_path / "telco.csv")

    summary = run_local(
        PipelineParams(
            data_uri=str(data), model_type="logreg", search_budget=1, cv_folds=2, promote=True,
            max_regression=0.1,
        ),
        tmp_path / "run",
    )  # fmt: skip
    registry = summary["registry"]
    assert registry["version"] == "2"
    compared = registry["compared_against_champion"]
    assert compared["champion_version"] == "1" and compared["test_rows"] == summary["data"]["splits"]["test"]
    assert compared["rows"] == compared["test_rows"]  # other customers than the champion's: all compared
    assert registry["message"].startswith("Compared against champion v1 re-scored on the ")
    assert registry["registered_model"] == settings.registered_model

    with connect(settings, "read version") as mlflow:
        mv = mlflow.client.get_model_version(settings.registered_model, "2")
        run_tags = mlflow.client.get_run(mv.run_id).data.tags
    assert mv.tags["data_hash"] == summary["data"]["data_hash"] != good.lineage.data_hash
    assert mv.tags["gate_verdict"] == registry["gate"]["verdict"]
    assert run_tags["source_uri"] == summary["data"]["source_uri"]
    if registry["gate"]["passed"]:
        assert registry["champion_after"] == "2"
    # the published bundle downloads back from S3 with the registered hash
    loc = parse_s3(mv.tags["bundle_uri"])
    for name in BUNDLE_FILES:
        s3.client().fget_object(loc.bucket, f"{loc.key}{name}", str(tmp_path / "dl" / name))
    for name in set(read_metadata(tmp_path / "dl").files) - set(BUNDLE_FILES):  # reference.json
        s3.client().fget_object(loc.bucket, f"{loc.key}{name}", str(tmp_path / "dl" / name))
    assert bundle_digest(tmp_path / "dl")[0] == mv.tags["bundle_sha256"]
