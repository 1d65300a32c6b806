"""A model bundle on local disk: ``model.onnx`` + ``metadata.json``, opened for low-latency scoring."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from components.schema import Feature

MODEL_FILE = "model.onnx"
METADATA_FILE = "metadata.json"


class BundleError(RuntimeError):
    """The bundle is missing, corrupt, or does not match the model contract."""


@dataclass(frozen=True)
class Bundle:
    """An opened bundle: the ONNX Runtime session plus what the metadata says about it."""

    session: ort.InferenceSession
    metadata: dict
    features: tuple[Feature, ...]
    probabilities_output: str
    positive_column: int
    threshold: float

    @property
    def model_version(self) -> str:
        return str(self.metadata["model_version"])

    def score(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """P(churn) per row, float32, shape (N,)."""
        (probabilities,) = self.session.run([self.probabilities_output], feeds)
        return probabilities[:, self.positive_column]


def session_options(intra_op_threads: int = 1) -> ort.SessionOptions:
    """Options tuned for small-batch latency.

    One intra-op thread: the graph is a handful of tiny ops, so a thread pool costs more in
    wake-ups than it gains, and the server runs several requests at once anyway. Spinning is
    off so idle pool threads do not burn the cores that parse the next request.
    """
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = intra_op_threads
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return opts


def _features_from_schema(schema: dict) -> tuple[Feature, ...]:
    fields = ("name", "kind", "categories", "minimum", "maximum", "integer", "description")
    out = []
    for spec in schema["features"]:
        kwargs = {k: spec[k] for k in fields if k in spec}
        kwargs["categories"] = tuple(kwargs.get("categories", ()))
        out.append(Feature(**kwargs))
    return tuple(out)


def open_bundle(directory: str | Path, intra_op_threads: int = 1) -> Bundle:
    """Open and check a bundle directory; raise :class:`BundleError` with the reason if unusable."""
    directory = Path(directory)
    model_path, metadata_path = directory / MODEL_FILE, directory / METADATA_FILE
    for path in (model_path, metadata_path):
        if not path.is_file():
            raise BundleError(f"{path} does not exist")
    try:
        metadata = json.loads(metadata_path.read_text())
    except (OSError, ValueError) as exc:
        raise BundleError(f"{metadata_path} is not valid JSON: {exc}") from exc
    missing = [
        k for k in ("model_name", "model_version", "schema", "outputs", "threshold") if k not in metadata
    ]
    if missing:
        raise BundleError(f"{metadata_path} lacks keys {missing}")
    blob = model_path.read_bytes()
    expected = metadata.get("onnx_sha256")
    if expected and hashlib.sha256(blob).hexdigest() != expected:
        raise BundleError(
            f"{model_path} does not match onnx_sha256 in metadata.json (corrupt or replaced file)"
        )
    try:
        session = ort.InferenceSession(
            blob, sess_options=session_options(intra_op_threads), providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf types
        raise BundleError(f"ONNX Runtime cannot load {model_path}: {exc}") from exc

    features = _features_from_schema(metadata["schema"])
    graph_inputs = {i.name: i.type for i in session.get_inputs()}
    wanted = {f.name: "tensor(string)" if f.is_categorical else "tensor(float)" for f in features}
    if graph_inputs != wanted:
        raise BundleError(f"ONNX inputs {graph_inputs} do not match the schema's features {wanted}")
    outputs = metadata["outputs"]
    probabilities = outputs.get("probabilities", "probabilities")
    if probabilities not in {o.name for o in session.get_outputs()}:
        raise BundleError(f"ONNX graph has no output {probabilities!r}")
    return Bundle(
        session=session,
        metadata=metadata,
        features=features,
        probabilities_output=probabilities,
        positive_column=int(outputs.get("positive_column", 1)),
        threshold=float(metadata["threshold"]),
    )
