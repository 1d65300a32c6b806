"""The churn predictor: a small ``kserve.Model`` that scores with ONNX Runtime."""

from __future__ import annotations

import itertools
import os
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
from kserve import Model
from kserve.errors import InferenceError, ModelNotReady
from kserve.logging import logger
from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse, RequestedOutput

from components.config import Settings
from serving import metrics
from serving.bundle import Bundle, open_bundle
from serving.payload_log import Entry, PayloadLog
from serving.storage import local_bundle
from serving.validation import Batch, Column, RequestError, RequestTooLarge, Validator, by_name

_request_ids = itertools.count()
_request_id_prefix = secrets.token_hex(8)


def new_request_id() -> str:
    """An id for a request that brought none: 32 hex digits (as ``uuid4().hex``), unique without a
    syscall per request: 64 random bits drawn once per process, then the process's request count.

    ``secrets.token_hex(16)`` per request cost a ``getrandom`` call each (1.6% of a one-row
    request's CPU samples under one client, benchmarks/README.md, twelfth session).
    """
    return f"{_request_id_prefix}{next(_request_ids):016x}"


def _redraw_request_id_prefix() -> None:  # a forked child must not repeat its parent's ids
    global _request_id_prefix
    _request_id_prefix = secrets.token_hex(8)


os.register_at_fork(after_in_child=_redraw_request_id_prefix)

OUTPUT_TYPES = [
    {"name": "churn_probability", "datatype": "FP32", "shape": [-1]},
    {"name": "churn", "datatype": "BOOL", "shape": [-1]},
]


class Scored(NamedTuple):
    """A scored batch: request id, P(churn), decision, and the bundle that scored it.

    ``batch``, ``bundle``, ``series`` and ``at`` (epoch seconds) are what :meth:`ChurnModel.record`
    counts and payload-logs it with.
    """

    request_id: str
    rows: int
    scores: np.ndarray
    churn: np.ndarray
    batch: Batch
    bundle: Bundle
    series: metrics.VersionSeries
    at: float

    @property
    def version(self) -> str:
        """The served version that scored it (``Bundle.served_version``: registry or content id)."""
        return self.bundle.served_version


def _values(infer_input) -> Any:
    """An input's values without kserve's per-element conversions.

    JSON gives a list; gRPC ``contents`` a list of numbers or bytes; gRPC ``raw_input_contents``
    only raw bytes, which ``as_numpy`` decodes (BYTES come out as ``bytes``; validation makes str).
    """
    data = infer_input.data
    if data is None or (len(data) == 0 and getattr(infer_input, "_raw_data", None)):
        return infer_input.as_numpy()
    return data


class ChurnModel(Model):
    """Loads ``model.onnx`` + ``metadata.json`` from ``model_dir`` (path or storage URI); scores batches."""

    def __init__(
        self,
        name: str,
        model_dir: str,
        settings: Settings,
        max_batch_rows: int = 10_000,
        payload_log: PayloadLog | None = None,
        intra_op_threads: int = 1,
        max_request_id_chars: int = 256,
    ):
        super().__init__(name)
        self.model_dir = model_dir
        self.settings = settings
        self.max_batch_rows = max_batch_rows
        self.payload_log = payload_log
        self.intra_op_threads = intra_op_threads
        self.max_request_id_chars = max_request_id_chars
        # Swapped as one reference so a request never sees half a reload.
        self._state: tuple[Bundle, Validator, metrics.VersionSeries] | None = None
        self._load_lock = threading.Lock()
        metrics.MODEL_READY.labels(name).set(0)

    @property
    def bundle(self) -> Bundle | None:
        return self._state[0] if self._state else None

    @property
    def validator(self) -> Validator | None:
        """The loaded version's request validator (None while loading)."""
        return self._state[1] if self._state else None

    @property
    def series(self) -> metrics.VersionSeries | None:
        """The metric series of the loaded version (None while loading)."""
        return self._state[2] if self._state else None

    def load(self) -> bool:
        """Open the bundle; on failure log why, stay not-ready and return False (never raise)."""
        if not self._load_lock.acquire(blocking=False):
            return self.ready  # another thread is loading; kserve may call load() from a request
        try:
            started = time.perf_counter()
            try:
                with local_bundle(self.model_dir, self.settings) as directory:
                    bundle = open_bundle(directory, self.intra_op_threads)
                validator = Validator(bundle.features, self.max_batch_rows)
                bundle.score(validator.columns(_warmup_columns(bundle)))  # first run allocates
            except Exception as exc:
                logger.error("model %r NOT loaded from %s: %s", self.name, self.model_dir, exc)
                metrics.MODEL_LOAD_FAILURES.labels(self.name).inc()
                return False
            seconds = time.perf_counter() - started
            labels = (self.name, bundle.content_id, bundle.registry_label)
            self._state = (bundle, validator, metrics.version_series(labels))
            meta = bundle.metadata
            metrics.MODEL_INFO.clear()
            metrics.MODEL_INFO.labels(
                *labels, meta.content_sha256, meta.model_type, f"{bundle.threshold:g}"
            ).set(1)
            metrics.MODEL_LOAD_SECONDS.labels(*labels).set(seconds)
            metrics.MODEL_READY.labels(self.name).set(1)
            self.ready = True
            logger.info(
                "model %r (content %s, registry version %s) loaded from %s in %.3f s",
                self.name,
                bundle.content_id,
                bundle.registry_label,
                self.model_dir,
                seconds,
            )
            return True
        finally:
            self._load_lock.release()

    def get_input_types(self) -> list[dict]:
        bundle = self.bundle
        if bundle is None:
            return []
        return [f.v2_input() for f in bundle.features]

    def get_output_types(self) -> list[dict]:
        return OUTPUT_TYPES if self.bundle is not None else []

    def identity(self) -> dict[str, str | None]:
        """The loaded model's identities (``GET /v2/models/{name}`` ``parameters``); {} while loading."""
        bundle = self.bundle
        if bundle is None:
            return {}
        return {
            "model_version": bundle.served_version,
            "content_sha256": bundle.metadata.content_sha256,
            "registry_version": bundle.registry_version,
            "registered_model": bundle.metadata.registered_model,
        }

    def predict(self, payload: InferRequest | dict, headers: dict[str, str] | None = None):
        """Validate, score, record; answer v2 with an ``InferResponse`` and v1 with ``predictions``.

        Synchronous on purpose: one row takes ~30 µs in ONNX Runtime, less than a hop to a
        thread pool would cost (see the report in benchmarks/README.md).
        """
        is_v2 = isinstance(payload, InferRequest)
        scored = self.score(
            lambda validator: self._validate(validator, payload),
            (payload.id if is_v2 else None) or (headers or {}).get("x-request-id"),
        )
        if not is_v2:
            return {
                "model_name": self.name,
                "model_version": scored.version,
                "predictions": [
                    {"churn_probability": p, "churn": c}
                    for p, c in zip(scored.scores.tolist(), scored.churn.tolist(), strict=True)
                ],
            }
        scores, churn = scored.scores, scored.churn
        if payload.from_grpc and payload.use_binary_outputs:
            # kserve 0.21 InferResponse.to_grpc tests a numpy array's truth value on this path
            # (ValueError for > 1 row); lists take the branch that works.
            scores, churn = scores.tolist(), churn.tolist()
        return InferResponse(
            response_id=scored.request_id,
            model_name=self.name,
            model_version=scored.version,
            infer_outputs=[
                InferOutput("churn_probability", [scored.rows], "FP32", data=scores),
                InferOutput("churn", [scored.rows], "BOOL", data=churn),
            ],
            use_binary_outputs=payload.use_binary_outputs,
            requested_outputs=_requested_outputs(payload),
        )

    def score(self, validate: Callable[[Validator], Batch], request_id: str | None = None) -> Scored:
        """Validate (``validate(validator)`` builds the batch), score, count, payload-log: :meth:`evaluate`
        then :meth:`record`.

        The one scoring path of every protocol: kserve's generic ones through :meth:`predict`;
        the lean v2 REST route (``serving.fast_route``) calls its two halves, :meth:`evaluate`
        and :meth:`record`, with the answer written in between.
        """
        scored = self.evaluate(validate, request_id)
        self.record(scored)
        return scored

    def evaluate(self, validate: Callable[[Validator], Batch], request_id: str | None = None) -> Scored:
        """Validate and score, counting a rejected or failed request; :meth:`record` counts a scored one."""
        bundle, validator, series = self._loaded()
        batch = self._validated(validator, series, validate, request_id)
        try:
            scores = bundle.score(batch)
        except Exception as exc:
            raise self._failed(series, batch.rows, exc) from exc
        return self._scored(request_id, batch, scores, bundle, series, time.time())

    def evaluate_many(
        self, requests: Sequence[tuple[Callable[[Validator], Batch], str | None]]
    ) -> list[Scored | Exception]:
        """:meth:`evaluate` for several requests at once: each validated on its own, the valid ones
        scored in one ONNX Runtime run.

        Per request, what :meth:`evaluate` returns or raises (raised errors are returned), and the
        same counts. One run for n one-row requests costs about what one does plus n rows
        (115 µs for 8 rows against 66 µs for 1 in ``benchmarks/README.md``): this is what
        :mod:`serving.lean_http` calls for requests that arrive together.
        """
        try:
            bundle, validator, series = self._loaded()
        except ModelNotReady as exc:
            return [exc] * len(requests)
        out: list = []  # each request's Batch, then its Scored; or its error
        for validate, request_id in requests:
            try:
                out.append(self._validated(validator, series, validate, request_id))
            except Exception as exc:  # counted by _validated if a RequestError, as evaluate does
                out.append(exc)
        valid = [i for i, b in enumerate(out) if type(b) is Batch]
        if not valid:
            return out
        batches = [out[i] for i in valid]
        together = batches[0]
        if len(batches) > 1:  # one batch of all their rows
            together = together._replace(
                strings=np.concatenate([b.strings for b in batches], axis=1),
                floats=np.concatenate([b.floats for b in batches], axis=1),
                rows=sum(b.rows for b in batches),
            )
        try:
            scores = bundle.score(together)
        except Exception as exc:
            for i in valid:
                failure = self._failed(series, out[i].rows, exc)
                failure.__cause__ = exc
                out[i] = failure
            return out
        at, start = time.time(), 0
        for i, batch in zip(valid, batches, strict=True):
            end = start + batch.rows
            out[i] = self._scored(requests[i][1], batch, scores[start:end], bundle, series, at)
            start = end
        return out

    def _loaded(self) -> tuple[Bundle, Validator, metrics.VersionSeries]:
        state = self._state
        if state is None:
            raise ModelNotReady(self.name)
        return state

    def _validated(
        self,
        validator: Validator,
        series: metrics.VersionSeries,
        validate: Callable[[Validator], Batch],
        request_id: str | None,
    ) -> Batch:
        """``validate(validator)``, the request id checked; a rejected request is counted and raised."""
        try:
            if request_id is not None and len(request_id) > self.max_request_id_chars:
                raise RequestTooLarge(
                    "request_id_too_long",
                    f"request id is {len(request_id)} characters; this server takes at most "
                    f"{self.max_request_id_chars} (--max_request_id_chars)",
                )
            return validate(validator)
        except RequestError as exc:
            metrics.VALIDATION_ERRORS.labels(self.name, exc.label).inc()
            series.rejected()
            if request_id is not None and len(request_id) <= self.max_request_id_chars:
                exc.request_id = request_id  # for the error's log line
            raise

    @staticmethod
    def _failed(series: metrics.VersionSeries, rows: int, exc: Exception) -> InferenceError:
        """A failed ONNX Runtime run of a request of ``rows`` rows, counted."""
        series.failed(rows)
        return InferenceError(f"ONNX Runtime failed: {exc}")

    @staticmethod
    def _scored(
        request_id: str | None,
        batch: Batch,
        scores: np.ndarray,
        bundle: Bundle,
        series: metrics.VersionSeries,
        at: float,
    ) -> Scored:
        return Scored(
            request_id or new_request_id(),
            batch.rows,
            scores,
            scores >= bundle.threshold,
            batch,
            bundle,
            series,
            at,
        )

    def record(self, scored: Scored) -> None:
        """Count a scored batch in its version's series and write it to the payload log."""
        series, bundle = scored.series, scored.bundle
        series.scored(scored.scores, scored.churn)
        for feature, count in scored.batch.unknown_categories.items():
            metrics.UNKNOWN_CATEGORIES.labels(*series.labels, feature).inc(count)
        if self.payload_log is not None:
            self.payload_log.log(
                Entry(
                    scored.at,
                    scored.request_id,
                    self.name,
                    scored.version,
                    bundle.metadata.content_sha256,
                    bundle.registry_version,
                    scored.batch.feeds,
                    scored.scores,
                    scored.churn,
                )
            )

    @staticmethod
    def _validate(validator: Validator, payload: InferRequest | dict) -> Batch:
        if isinstance(payload, InferRequest):
            inputs = [(i.name, Column(_values(i), i.datatype, i.shape)) for i in payload.inputs]
            return validator.columns(by_name(inputs))
        if isinstance(payload, dict) and "instances" in payload:
            return validator.records(payload["instances"])
        raise RequestError("bad_request", "expected a v2 inference request, or a v1 body with 'instances'")


def _requested_outputs(payload: InferRequest) -> list | None:
    """The request's ``outputs``, each with its binary flag resolved as the binary extension says.

    A per-output ``binary_data`` wins, else the request's ``binary_data_output``; kserve 0.21's
    ``to_rest`` reads only the per-output flag once outputs are named.
    """
    if not payload.request_outputs or payload.from_grpc:
        return payload.request_outputs
    default = bool(payload.use_binary_outputs)
    return [
        RequestedOutput(
            o.name,
            {**(o.parameters or {}), "binary_data": default if o.binary_data is None else o.binary_data},
        )
        for o in payload.request_outputs
    ]


def _warmup_columns(bundle: Bundle) -> dict[str, Column]:
    return {f.name: Column([f.categories[0]] if f.is_categorical else [f.minimum]) for f in bundle.features}
