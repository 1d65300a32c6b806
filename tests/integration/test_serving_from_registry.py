"""The model server loads the registry's champion from real servers: ``models:/NAME@champion``
through MLflow's REST API, and the published ``s3://`` bundle on SeaweedFS directly."""

from __future__ import annotations

import pandas as pd
import pytest

from components import schema
from components.export import onnx_predict_proba
from serving.examples import v2_request
from tests.support.model_server import start_model_server


@pytest.fixture(scope="module")
def registered(trained_bundle, s3, mlflow_server, tmp_path_factory):
    """The shared fixture's model registered and promoted on the real MLflow server + S3 store."""
    from components.config import load_settings
    from tests.integration.bundles import register_bundle
    from tests.integration.env import server_env

    env = server_env(s3, mlflow_server.url, tmp_path_factory.mktemp("home"))
    summary = register_bundle(trained_bundle, load_settings(env), run_id="serving-test")
    assert summary["champion_after"] == summary["version"]
    return env, summary


@pytest.mark.parametrize("source", ["models_alias", "s3_bundle"])
def test_server_loads_the_champion_and_scores_like_onnx(registered, trained_bundle, source, tmp_path):
    env, summary = registered
    model_dir = {
        "models_alias": f"models:/{env['CHURN_REGISTERED_MODEL']}@champion",
        "s3_bundle": summary["bundle_uri"],
    }[source]
    rows = pd.read_parquet(trained_bundle.test_path).head(25)
    server = start_model_server(model_dir, tmp_path / "server.log", env=env)
    try:
        answer = server.post(
            "/v2/models/churn/infer", json=v2_request(schema.FEATURES, rows.to_dict("records"))
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
    finally:
        server.stop()
    # The published bundle carries the registry's version number, and the response names it.
    assert body["model_version"] == summary["version"]
    outputs = {o["name"]: o["data"] for o in body["outputs"]}
    expected = onnx_predict_proba(trained_bundle.bundle_dir / "model.onnx", rows)
    assert max(abs(a - b) for a, b in zip(outputs["churn_probability"], expected, strict=True)) <= 1e-6
