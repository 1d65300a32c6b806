"""The model server loads the registry's champion from real servers: ``models:/NAME@champion``
through MLflow's REST API, and the published ``s3://`` bundle on SeaweedFS directly."""

from __future__ import annotations

import pandas as pd
import pytest

from components import bundle, schema
from components.config import load_settings
from components.export import onnx_predict_proba
from serving.examples import v2_request
from serving.storage import local_bundle
from tests.integration.env import server_env
from tests.support.bundles import register_run
from tests.support.model_server import REPO, start_model_server
from tests.support.v2_requests import docs_example


@pytest.fixture(scope="module")
def registered(trained_run, s3, mlflow_server, tmp_path_factory):
    """The suite's trained run registered and promoted on the real MLflow server + S3 store."""
    env = server_env(s3, mlflow_server.url, tmp_path_factory.mktemp("home"))
    summary = register_run(trained_run, load_settings(env), run_id="serving-test")
    assert summary["champion_after"] == summary["version"]
    return env, summary


@pytest.mark.parametrize("source", ["models_alias", "s3_bundle"])
def test_server_loads_the_champion_and_scores_like_onnx(registered, trained_run, source, tmp_path):
    env, summary = registered
    model_dir = {
        "models_alias": f"models:/{summary['registered_model']}@champion",
        "s3_bundle": summary["bundle_uri"],
    }[source]
    rows = pd.read_parquet(trained_run.artifacts.test).head(25)
    server = start_model_server(model_dir, tmp_path / "server.log", env=env)
    try:
        answer = server.post(
            "/v2/models/churn/infer", json=v2_request(schema.FEATURES, rows.to_dict("records"))
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        documented_request, documented = docs_example(REPO / "docs" / "serving.md")
        example = server.post("/v2/models/churn/infer", json=documented_request).json()
        identity = server.get("/v2/models/churn").json()["parameters"]
        metrics = server.get("/metrics").text
    finally:
        server.stop()
    # A published bundle carries its registry version: responses name it, metrics label it.
    content = bundle.verify(trained_run.artifacts.bundle)
    assert body["model_version"] == summary["version"]
    # docs/serving.md's example shows a served champion: its model_version is the registry version.
    assert example["model_version"] == summary["version"]
    assert documented["model_version"].isdecimal() and list(example) == list(documented)
    assert identity["registry_version"] == summary["version"]
    assert identity["content_sha256"] == content.content_sha256
    rows_ok = [line for line in metrics.splitlines() if line.startswith("churn_rows_total{")]
    labels = (f'content_id="{content.content_id}"', f'registry_version="{summary["version"]}"')
    assert any(all(label in line for label in labels) for line in rows_ok), rows_ok
    outputs = {o["name"]: o["data"] for o in body["outputs"]}
    expected = onnx_predict_proba(trained_run.artifacts.bundle / bundle.MODEL_FILE, rows)
    assert max(abs(a - b) for a, b in zip(outputs["churn_probability"], expected, strict=True)) <= 1e-6


def test_s3_downloads_leave_nothing_behind(registered, tmp_path):
    """Each load from s3:// downloads into a fresh scratch folder that is gone once the load is done."""
    env, summary = registered
    settings, scratch = load_settings(env), tmp_path / "scratch"
    scratch.mkdir()
    for _ in range(3):  # a server reloading keeps no copies
        with local_bundle(summary["bundle_uri"], settings, scratch) as directory:
            assert directory.parent == scratch
            assert bundle.verify(directory).registry_version == summary["version"]
        assert list(scratch.iterdir()) == []
    with local_bundle(f"models:/{summary['registered_model']}@champion", settings, scratch) as directory:
        assert bundle.bundle_digest(directory)[0] == summary["bundle_sha256"]
    assert list(scratch.iterdir()) == []
