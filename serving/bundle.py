"""A verified model bundle opened for low-latency scoring with ONNX Runtime.

The bundle contract (file names, ``metadata.json`` record, hash check) is
:mod:`components.bundle`; this module only adds what scoring needs: the session options and the
opened :class:`Bundle` with the graph checked against the schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import onnxruntime as ort

from components import bundle as contract
from components.bundle import BundleError, BundleMetadata
from components.schema import Feature

# Prometheus label value (and payload-log null) for a bundle served straight from a run folder.
UNREGISTERED = "unregistered"


@dataclass(frozen=True)
class Bundle:
    """An opened bundle: the ONNX Runtime session plus its verified metadata.

    Identity: ``content_sha256`` is the model anywhere; ``registry_version`` the MLflow version
    number once published (None in a run folder). ``served_version`` is what v1/v2 responses
    call ``model_version``: the registry version, else the 12-digit content id.
    """

    session: ort.InferenceSession
    metadata: BundleMetadata
    features: tuple[Feature, ...]
    probabilities_output: str
    positive_column: int
    threshold: float

    @property
    def content_id(self) -> str:
        return self.metadata.content_id

    @property
    def registry_version(self) -> str | None:
        return self.metadata.registry_version

    @cached_property  # read on every request
    def served_version(self) -> str:
        return self.registry_version or self.content_id

    @property
    def registry_label(self) -> str:
        """``registry_version`` as a Prometheus label value (never empty: empty means "absent")."""
        return self.registry_version or UNREGISTERED

    @cached_property
    def _run(self):
        """ONNX Runtime's C-level ``run`` (``InferenceSession._sess``), else the public one.

        The public wrapper re-checks the feed names (validation has, and the graph's inputs were
        checked against the schema at load) and the graph-capture and OrtValue rules, which do
        not apply to numpy feeds on the CPU: ~10 µs of a one-row request here.
        """
        return getattr(self.session, "_sess", self.session).run

    def score(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """P(churn) per row, float32, shape (N,)."""
        (probabilities,) = self._run([self.probabilities_output], feeds, None)
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
    """Verify (:func:`components.bundle.verify`) and open a bundle; :class:`BundleError` says why not."""
    metadata = contract.verify(Path(directory))
    model_path = Path(directory) / contract.MODEL_FILE
    try:
        session = ort.InferenceSession(
            str(model_path),
            sess_options=session_options(intra_op_threads),
            providers=["CPUExecutionProvider"],
        )
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf types
        raise BundleError(f"ONNX Runtime cannot load {model_path}: {exc}") from exc

    features = _features_from_schema(metadata.schema)
    graph_inputs = {i.name: i.type for i in session.get_inputs()}
    wanted = {f.name: "tensor(string)" if f.is_categorical else "tensor(float)" for f in features}
    if graph_inputs != wanted:
        raise BundleError(f"ONNX inputs {graph_inputs} do not match the schema's features {wanted}")
    probabilities = metadata.outputs.probabilities
    if probabilities not in {o.name for o in session.get_outputs()}:
        raise BundleError(f"ONNX graph has no output {probabilities!r}")
    return Bundle(
        session=session,
        metadata=metadata,
        features=features,
        probabilities_output=probabilities,
        positive_column=metadata.outputs.positive_column,
        threshold=metadata.threshold,
    )
