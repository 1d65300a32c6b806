"""Export: the whole fitted Pipeline to one ONNX graph + metadata.json, parity-checked.

The graph takes one named input per raw schema column (string tensors for categoricals, float
for numerics, each shaped (N, 1)) and returns tensors only (``label``, ``probabilities``; no
ZipMap, which KServe's Triton runtime rejects). Export fails unless ONNX Runtime reproduces
scikit-learn's probabilities on the whole test split within ``PARITY_TOLERANCE``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import platform
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path

import joblib
import numpy as np
import onnxruntime as ort
import pandas as pd
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.pipeline import Pipeline

from components import onnx_converters, schema, storage
from components.config import package_version
from components.features import model_frame

log = logging.getLogger(__name__)

PARITY_TOLERANCE = 1e-5
TARGET_OPSET = {"": 17, "ai.onnx.ml": onnx_converters.ML_OPSET}
MODEL_FILE = "model.onnx"
METADATA_FILE = "metadata.json"
PROBABILITIES, LABEL, POSITIVE_COLUMN = "probabilities", "label", 1
_VERSIONED = ("scikit-learn", "xgboost", "skl2onnx", "onnxmltools", "onnx", "onnxruntime", "numpy", "pandas")


class ExportError(RuntimeError):
    """The ONNX graph could not be built or does not reproduce the scikit-learn model."""


def to_onnx(model: Pipeline) -> bytes:
    """Convert a fitted churn Pipeline to a serialized ONNX model."""
    onnx_converters.register()
    initial_types = [
        (f.name, StringTensorType([None, 1]) if f.is_categorical else FloatTensorType([None, 1]))
        for f in schema.FEATURES
    ]
    try:
        onx = convert_sklearn(
            model,
            initial_types=initial_types,
            target_opset=TARGET_OPSET,
            options={id(model.steps[-1][1]): {"zipmap": False}},
        )
    except Exception as exc:  # skl2onnx raises many types; say which step failed
        raise ExportError(f"ONNX conversion of {type(model.steps[-1][1]).__name__} failed: {exc}") from exc
    onx.doc_string = f"churn model, schema v{schema.SCHEMA_VERSION}"
    onx.graph.name = "churn"  # skl2onnx names graphs with a random UUID: same model, same bytes

    return onx.SerializeToString()


def onnx_feed(data: pd.DataFrame) -> dict[str, np.ndarray]:
    """ONNX Runtime inputs for rows of raw schema columns: one (N, 1) array per feature."""
    frame = model_frame(data)
    return {
        f.name: frame[[f.name]].to_numpy(dtype=object if f.is_categorical else np.float32)
        for f in schema.FEATURES
    }


def session(model: bytes | str | Path) -> ort.InferenceSession:
    """An ONNX Runtime CPU session for serialized bytes or a model file."""
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, providers=["CPUExecutionProvider"])


def onnx_predict_proba(model: bytes | str | Path | ort.InferenceSession, data: pd.DataFrame) -> np.ndarray:
    """P(churn) for each row of ``data`` scored by an ONNX churn graph."""
    sess = model if isinstance(model, ort.InferenceSession) else session(model)
    (probabilities,) = sess.run([PROBABILITIES], onnx_feed(data))
    return probabilities[:, POSITIVE_COLUMN].astype(np.float64)


def parity(model: Pipeline, onnx_bytes: bytes, data: pd.DataFrame) -> float:
    """Max |scikit-learn - ONNX| churn probability over ``data``."""
    expected = model.predict_proba(model_frame(data))[:, POSITIVE_COLUMN]
    return float(np.max(np.abs(expected - onnx_predict_proba(onnx_bytes, data))))


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "churn-mlops": package_version()}
    for name in _VERSIONED:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            continue
    return versions


def export(
    model_path: Path,
    test_path: Path,
    bundle_dir: Path,
    *,
    threshold: float,
    metrics: dict,
    data_hash: str,
    model_type: str,
) -> dict:
    """Write ``bundle_dir/model.onnx`` and ``metadata.json``; return the metadata.

    Nothing is written unless the parity check passes.
    """
    model = joblib.load(model_path)
    test = pd.read_parquet(test_path)
    onnx_bytes = to_onnx(model)
    max_diff = parity(model, onnx_bytes, test)
    log.info("export: parity on %d test rows, max |sklearn - onnx| = %.2e", len(test), max_diff)
    if not max_diff <= PARITY_TOLERANCE:
        raise ExportError(
            f"ONNX parity check failed: max |sklearn - onnx| probability {max_diff:.3e} "
            f"> {PARITY_TOLERANCE:g} on {len(test)} test rows"
        )
    digest = hashlib.sha256(onnx_bytes).hexdigest()
    meta = {
        "model_name": "churn",
        "model_version": digest[:12],
        "model_type": model_type,
        "schema": schema.schema_dict(),
        "inputs": [f.v2_input() for f in schema.FEATURES],
        "outputs": {"probabilities": PROBABILITIES, "positive_column": POSITIVE_COLUMN, "label": LABEL},
        "threshold": float(threshold),
        "metrics": metrics,
        "parity_max_abs_diff": max_diff,
        "data_hash": data_hash,
        "onnx_sha256": digest,
        "library_versions": library_versions(),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    bundle_dir = Path(bundle_dir)
    with storage.atomic_path(bundle_dir / MODEL_FILE) as tmp:
        tmp.write_bytes(onnx_bytes)
    with storage.atomic_path(bundle_dir / METADATA_FILE) as tmp:
        tmp.write_text(json.dumps(meta, indent=2))
    return meta
