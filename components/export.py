"""Export: the whole fitted Pipeline to one ONNX graph + metadata.json, parity-checked.

The graph includes the calibration (its ``probabilities`` are the calibrated ones, as the
Pipeline's ``predict_proba``); the metadata records the calibration method and parameters.

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
import onnx
import onnxruntime as ort
import pandas as pd
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.pipeline import Pipeline

from components import bundle, calibration, onnx_converters, reference, schema
from components.artifacts import RunArtifacts
from components.bundle import POSITIVE_COLUMN, PROBABILITIES, BundleMetadata
from components.config import package_version
from components.errors import ChurnError
from components.evaluate import headline
from components.features import model_frame

log = logging.getLogger(__name__)

PARITY_TOLERANCE = 1e-5
TARGET_OPSET = {"": 17, "ai.onnx.ml": onnx_converters.ML_OPSET}
_VERSIONED = ("scikit-learn", "xgboost", "skl2onnx", "onnxmltools", "onnx", "onnxruntime", "numpy", "pandas")


class ExportError(ChurnError, RuntimeError):
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
    _sort_opset_imports(onx)
    return onx.SerializeToString()


def _sort_opset_imports(onx: onnx.ModelProto) -> None:
    """Order ``opset_import`` by domain. skl2onnx emits it in set-iteration order, which varies
    with PYTHONHASHSEED, so the same model would otherwise get another content hash per process."""
    imports = sorted(((o.domain, o.version) for o in onx.opset_import), key=lambda pair: pair[0])
    del onx.opset_import[:]
    for domain, version in imports:
        onx.opset_import.add(domain=domain, version=version)


def onnx_feed(data: pd.DataFrame) -> dict[str, np.ndarray]:
    """ONNX Runtime inputs for rows of raw schema columns: one (N, 1) array per feature, as
    :func:`model_frame` types them (numerics float32), read column by column without its copy."""
    return {
        f.name: data[f.name].to_numpy(dtype=object if f.is_categorical else np.float32).reshape(-1, 1)
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


def _calibration_record(model: Pipeline) -> dict | None:
    fitted = calibration.calibration_of(model)
    return fitted.to_dict() if fitted is not None else None


def export(artifacts: RunArtifacts, *, data_hash: str, model_type: str) -> BundleMetadata:
    """Convert ``artifacts.model`` and write the bundle to ``artifacts.bundle``; return its metadata.

    The threshold and headline metrics come from ``artifacts.evaluation``; parity is checked on
    ``artifacts.test``. Nothing is written unless the parity check passes. The bundle carries
    the monitoring reference (:mod:`components.reference`) of the test split, scored by the
    exported graph itself: the scores serving will return.
    """
    model = joblib.load(artifacts.model)
    test = pd.read_parquet(artifacts.test)
    evaluation = json.loads(Path(artifacts.evaluation).read_text())
    onnx_bytes = to_onnx(model)
    max_diff = parity(model, onnx_bytes, test)
    log.info("export: parity on %d test rows, max |sklearn - onnx| = %.2e", len(test), max_diff)
    if not max_diff <= PARITY_TOLERANCE:
        raise ExportError(
            f"ONNX parity check failed: max |sklearn - onnx| probability {max_diff:.3e} "
            f"> {PARITY_TOLERANCE:g} on {len(test)} test rows"
        )
    metadata = BundleMetadata(
        model_name="churn",
        model_type=model_type,
        content_sha256=hashlib.sha256(onnx_bytes).hexdigest(),
        threshold=float(evaluation["threshold"]),
        schema=schema.schema_dict(),
        inputs=[f.v2_input() for f in schema.FEATURES],
        metrics=headline(evaluation),
        parity_max_abs_diff=max_diff,
        calibration=_calibration_record(model),
        data_hash=data_hash,
        library_versions=library_versions(),
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    monitoring = reference.build(
        test, onnx_predict_proba(onnx_bytes, test), metadata.threshold, evaluation["business"]
    )
    return bundle.write(artifacts.bundle, onnx_bytes, metadata, monitoring.to_json())
