import json

import joblib
import numpy as np
import onnx
import pandas as pd
import pytest

from components import schema
from components.export import ExportError, export, onnx_predict_proba, parity, to_onnx
from components.train import TrainConfig, fit


@pytest.mark.parametrize("model_type", ["xgboost", "logreg", "random_forest"])
def test_onnx_matches_sklearn_for_every_model_type(splits, model_type):
    train, _, test = splits
    model, _ = fit(train, TrainConfig(model_type=model_type, search_budget=1, seed=2))
    assert parity(model, to_onnx(model), test) <= 1e-5


def test_export_is_reproducible(trained_bundle):
    model = joblib.load(trained_bundle.sklearn_model_path)
    assert to_onnx(model) == to_onnx(model)  # the content hash names a model, not a conversion


def test_graph_has_one_input_per_raw_column_and_tensor_outputs(trained_bundle):
    graph = onnx.load(trained_bundle.bundle_dir / "model.onnx").graph
    inputs = {i.name: i.type.tensor_type.elem_type for i in graph.input}
    assert list(inputs) == list(schema.FEATURE_NAMES)
    for feature in schema.FEATURES:
        expected = onnx.TensorProto.STRING if feature.is_categorical else onnx.TensorProto.FLOAT
        assert inputs[feature.name] == expected, feature.name
    assert [o.name for o in graph.output] == ["label", "probabilities"]
    assert all(o.type.HasField("tensor_type") for o in graph.output)  # no ZipMap sequence


def test_metadata_describes_the_bundle(trained_bundle):
    meta = json.loads((trained_bundle.bundle_dir / "metadata.json").read_text())
    metrics = json.loads(trained_bundle.metrics_path.read_text())
    assert meta["threshold"] == metrics["threshold"]
    assert meta["metrics"]["roc_auc"] == metrics["roc_auc"]
    assert meta["data_hash"] == trained_bundle.data_hash
    assert meta["schema"] == schema.schema_dict()
    assert [i["name"] for i in meta["inputs"]] == list(schema.FEATURE_NAMES)
    assert meta["parity_max_abs_diff"] <= 1e-5
    assert {"scikit-learn", "xgboost", "onnxruntime", "skl2onnx"} <= set(meta["library_versions"])


def test_unknown_categories_are_scored_not_rejected(trained_bundle):
    rows = pd.read_parquet(trained_bundle.test_path).head(5).copy()
    rows["PaymentMethod"] = "Crypto wallet"
    p = onnx_predict_proba(trained_bundle.bundle_dir / "model.onnx", rows)
    expected = joblib.load(trained_bundle.sklearn_model_path).predict_proba(rows[list(schema.FEATURE_NAMES)])[
        :, 1
    ]
    assert np.abs(p - expected).max() <= 1e-5


def test_failed_parity_fails_the_export_and_writes_nothing(trained_bundle, tmp_path, monkeypatch):
    import components.export as export_module

    other, _ = fit(
        pd.read_parquet(trained_bundle.train_path), TrainConfig(model_type="logreg", search_budget=1)
    )
    monkeypatch.setattr(export_module, "to_onnx", lambda _model: to_onnx(other))
    with pytest.raises(ExportError, match="parity check failed"):
        export(
            trained_bundle.sklearn_model_path, trained_bundle.test_path, tmp_path / "bundle",
            threshold=0.5, metrics={}, data_hash="x", model_type="xgboost",
        )  # fmt: skip
    assert not (tmp_path / "bundle").exists()
