"""A verified model bundle opened for low-latency scoring with ONNX Runtime.

The bundle contract (file names, ``metadata.json`` record, hash check) is
:mod:`components.bundle`; this module only adds what scoring needs: the session options and the
opened :class:`Bundle` with the graph checked against the schema.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx
import onnxruntime as ort
from kserve.logging import logger

from components import bundle as contract
from components.bundle import BundleError, BundleMetadata
from components.schema import Feature
from serving.packed_graph import PACKED_FLOATS, PACKED_SCORE, PACKED_STRINGS, packed_graph

if TYPE_CHECKING:
    from serving.validation import Batch

# Prometheus label value (and payload-log null) for a bundle served straight from a run folder.
UNREGISTERED = "unregistered"
# Up to this many rows a batch is scored by the packed graph (serving.packed_graph): ONNX Runtime's
# cost per input and per node is most of a small run (interleaved, transposes included: 0.42x the
# bundle graph at 1 row, 0.61x at 8, 0.72x at 16, 0.87x at 32); at 256 rows the bundle's own graph
# is faster (1.05x: the packed one encodes every string column for the union of categories).
# benchmarks/README.md, twelfth session.
PACKED_MAX_ROWS = 32


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
    packed: ort.InferenceSession | None = None  # serving.packed_graph's, for small batches

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
    def _run(self) -> Callable:
        """ONNX Runtime's C-level ``run`` (``InferenceSession._sess``), else the public one.

        The public wrapper re-checks the feed names (validation has, and the graph's inputs were
        checked against the schema at load) and the graph-capture and OrtValue rules, which do
        not apply to numpy feeds on the CPU: ~10 µs of a one-row request here.
        """
        return _c_run(self.session)

    @cached_property
    def _packed_run(self) -> Callable | None:
        return None if self.packed is None else _c_run(self.packed)

    @cached_property
    def _packed_names(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The features of the packed graph's two inputs' columns (:func:`packed_graph`'s order)."""
        return (
            tuple(f.name for f in self.features if f.is_categorical),
            tuple(f.name for f in self.features if not f.is_categorical),
        )

    def score(self, batch: Batch) -> np.ndarray:
        """P(churn) per row of a validated batch, float32, shape (N,).

        A batch of up to :data:`PACKED_MAX_ROWS` rows goes to the packed graph as its two
        matrices, a larger one to the bundle's own graph as one input per feature.
        """
        packed = self._packed_run
        if packed is not None and batch.rows <= PACKED_MAX_ROWS and batch.names == self._packed_names:
            feeds = {
                PACKED_STRINGS: np.ascontiguousarray(batch.strings.T),  # one row: already contiguous
                PACKED_FLOATS: np.ascontiguousarray(batch.floats.T),
            }
            (score,) = packed([PACKED_SCORE], feeds, None)
            return score[:, 0]
        (probabilities,) = self._run([self.probabilities_output], batch.feeds, None)
        return probabilities[:, self.positive_column]


def _c_run(session: ort.InferenceSession) -> Callable:
    return getattr(session, "_sess", session).run


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
        packed=_packed_session(
            model_path, session, features, (probabilities, metadata.outputs.positive_column), intra_op_threads
        ),
    )


def _packed_session(
    model_path: Path,
    session: ort.InferenceSession,
    features: Sequence[Feature],
    output: tuple[str, int],
    threads: int,
) -> ort.InferenceSession | None:
    """The packed graph's session, checked to give the bundle graph's very P(churn) (``output``: the
    probabilities output and its positive column); None (and a warning: the bundle's own graph then
    scores every batch) if it cannot be built or differs."""
    categorical = [f for f in features if f.is_categorical]
    numeric = [f for f in features if not f.is_categorical]
    strings, floats = probe_rows(categorical, numeric)
    try:
        names = [f.name for f in categorical], [f.name for f in numeric]
        model = packed_graph(onnx.load(model_path), *names, *output)
        packed = ort.InferenceSession(
            model.SerializeToString(),
            sess_options=session_options(threads),
            providers=["CPUExecutionProvider"],
        )
        feeds = {
            f.name: column.reshape(-1, 1)
            for f, column in zip([*categorical, *numeric], [*strings, *floats], strict=True)
        }
        own = session.run([output[0]], feeds)[0][:, output[1] : output[1] + 1]
        (theirs,) = packed.run(
            [PACKED_SCORE], {PACKED_STRINGS: strings.T.copy(), PACKED_FLOATS: floats.T.copy()}
        )
        if theirs.shape != own.shape:
            raise ValueError(f"probabilities of shape {theirs.shape}, not {own.shape}")
    except Exception as exc:  # onnx and onnxruntime raise their own types
        logger.warning(
            "the bundle's own graph scores every batch: no packed graph for %s: %s", model_path, exc
        )
        return None
    if not np.array_equal(own, theirs):
        logger.warning("the bundle's own graph scores every batch: the packed graph's probabilities differ "
                       "on the probe rows (max |diff| %g)", float(np.max(np.abs(own - theirs))))  # fmt: skip
        return None
    return packed


def probe_rows(categorical: Sequence[Feature], numeric: Sequence[Feature]) -> tuple[np.ndarray, np.ndarray]:
    """Rows that tell the packed graph from a wrong one: (C, R) strings and (K, R) floats.

    Every category of every feature; each feature given the categories of the next one (a value
    another column knows, which the packed graph's one encoder sees); an unknown value in every
    column; numbers from each feature's minimum to its maximum.
    """
    longest = max((len(f.categories) for f in categorical), default=1)
    neighbours = [*categorical[1:], *categorical[:1]]
    columns = [
        [*(f.categories[r % len(f.categories)] for r in range(longest)),
         *(g.categories[r % len(g.categories)] for r in range(longest)), "not a category (serving probe)"]
        for f, g in zip(categorical, neighbours, strict=True)
    ]  # fmt: skip
    rows = 2 * longest + 1
    strings = np.array(columns, dtype=object).reshape(len(categorical), rows)
    floats = np.array([np.linspace(f.minimum, f.maximum, rows) for f in numeric], dtype=np.float32)
    return strings, floats.reshape(len(numeric), rows)
