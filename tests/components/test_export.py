import hashlib
import json
import os
import subprocess
import sys
from dataclasses import replace

import joblib
import numpy as np
import onnx
import pandas as pd
import pytest

from components import bundle, schema
from components.bundle import METADATA_FILE, MODEL_FILE
from components.export import ExportError, export, onnx_predict_proba, parity, to_onnx
from components.train import TrainConfig, fit


@pytest.mark.parametrize("model_type", ["xgboost", "logreg", "random_forest"])
def test_onnx_matches_sklearn_for_every_model_type(splits, model_type):
    train, valid, test = splits
    model, _ = fit(train, TrainConfig(model_type=model_type, search_budget=1, seed=2), valid=valid)
    assert parity(model, to_onnx(model), test) <= 1e-5


def test_export_is_reproducible(trained_run):
    model = joblib.load(trained_run.artifacts.model)
    assert to_onnx(model) == to_onnx(model)  # the content hash names a model, not a conversion


# Prints the SHA-256 of to_onnx(model) for the joblib model given as argv[1].
_CONVERT_IN_A_NEW_PROCESS = (
    "import hashlib, sys, joblib; from components.export import to_onnx; "
    "print(hashlib.sha256(to_onnx(joblib.load(sys.argv[1]))).hexdigest())"
)


def test_export_bytes_are_identical_across_processes(trained_run):
    """skl2onnx orders ``opset_import`` by set iteration, which PYTHONHASHSEED changes."""
    model = joblib.load(trained_run.artifacts.model)
    expected = hashlib.sha256(to_onnx(model)).hexdigest()
    digests = set()
    for hash_seed in range(4):
        env = {**os.environ, "PYTHONHASHSEED": str(hash_seed)}
        done = subprocess.run(
            [sys.executable, "-c", _CONVERT_IN_A_NEW_PROCESS, str(trained_run.artifacts.model)],
            env=env, capture_output=True, text=True, check=True, timeout=120,
        )  # fmt: skip
        digests.add(done.stdout.strip())
    assert digests == {expected}
    domains = [o.domain for o in onnx.load_from_string(to_onnx(model)).opset_import]
    assert domains == sorted(domains)


def test_graph_has_one_input_per_raw_column_and_tensor_outputs(trained_run):
    graph = onnx.load(trained_run.artifacts.bundle / MODEL_FILE).graph
    inputs = {i.name: i.type.tensor_type.elem_type for i in graph.input}
    assert list(inputs) == list(schema.FEATURE_NAMES)
    for feature in schema.FEATURES:
        expected = onnx.TensorProto.STRING if feature.is_categorical else onnx.TensorProto.FLOAT
        assert inputs[feature.name] == expected, feature.name
    assert [o.name for o in graph.output] == ["label", "probabilities"]
    assert all(o.type.HasField("tensor_type") for o in graph.output)  # no ZipMap sequence


def test_metadata_describes_the_bundle(trained_run):
    meta = bundle.verify(trained_run.artifacts.bundle)
    metrics = json.loads(trained_run.artifacts.evaluation.read_text())
    assert meta.threshold == metrics["threshold"]
    assert meta.metrics["roc_auc"] == metrics["roc_auc"]
    assert meta.data_hash == trained_run.lineage.data_hash
    assert meta.content_sha256 == bundle.file_sha256(trained_run.artifacts.bundle / MODEL_FILE)
    assert meta.registry_version is None  # a run folder's bundle is not registered yet
    assert meta.schema == schema.schema_dict()
    assert [i["name"] for i in meta.inputs] == list(schema.FEATURE_NAMES)
    assert meta.parity_max_abs_diff <= 1e-5
    assert {"scikit-learn", "xgboost", "onnxruntime", "skl2onnx"} <= set(meta.library_versions)
    raw = json.loads((trained_run.artifacts.bundle / METADATA_FILE).read_text())
    assert "model_version" not in raw and "onnx_sha256" not in raw  # one name per identity


def test_unknown_categories_are_scored_not_rejected(trained_run):
    rows = pd.read_parquet(trained_run.artifacts.test).head(5).copy()
    rows["PaymentMethod"] = "Crypto wallet"
    p = onnx_predict_proba(trained_run.artifacts.bundle / MODEL_FILE, rows)
    expected = joblib.load(trained_run.artifacts.model).predict_proba(rows[list(schema.FEATURE_NAMES)])[:, 1]
    assert np.abs(p - expected).max() <= 1e-5


def test_failed_parity_fails_the_export_and_writes_nothing(trained_run, tmp_path, monkeypatch):
    import components.export as export_module

    other, _ = fit(
        pd.read_parquet(trained_run.artifacts.train), TrainConfig(model_type="logreg", search_budget=1),
        valid=pd.read_parquet(trained_run.artifacts.valid),
    )  # fmt: skip
    monkeypatch.setattr(export_module, "to_onnx", lambda _model: to_onnx(other))
    artifacts = replace(trained_run.artifacts, bundle=tmp_path / "bundle")
    with pytest.raises(ExportError, match="parity check failed"):
        export(artifacts, data_hash="x", model_type="xgboost")
    assert not (tmp_path / "bundle").exists()
