"""Prometheus metrics of the churn predictor (kserve's own latency histograms sit beside them).

All live in the default registry, which kserve serves on ``/metrics``; the per-version series of
the request path (requests, rows, positive decisions, latency, scores) are plain numbers exposed
by :class:`VersionCollector`, the rest ``prometheus_client`` metrics. Per-version series carry
the model's two identities as separate labels, so neither changes meaning with where the bundle
came from: ``content_id`` (12 hex digits of the ONNX graph's sha256) and ``registry_version``
(the MLflow version number, ``unregistered`` for a bundle served from a run folder).
"""

from __future__ import annotations

import bisect
import itertools
import threading
import time

import numpy as np
from kserve.metrics import POST_HIST_TIME, PRE_HIST_TIME, PREDICT_HIST_TIME
from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.utils import floatToGoString

VERSION_LABELS = ("model_name", "content_id", "registry_version")

VALIDATION_ERRORS = Counter(
    "churn_validation_errors", "Rejected requests by validation reason", ["model_name", "reason"]
)
UNKNOWN_CATEGORIES = Counter(
    "churn_unknown_categories", "Scored values not among the training categories, by version and feature",
    [*VERSION_LABELS, "feature"],
)  # fmt: skip
# Requests the lean HTTP protocol scored together in one ONNX Runtime run (serving.lean_http's
# Coalescer: requests read in the same event-loop turn while other connections are sending).
COALESCED_REQUESTS = Histogram(
    "churn_coalesced_requests",
    "Requests answered together, one ONNX Runtime run for the valid ones (lean HTTP protocol)",
    ["model_name"],
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
MODEL_LOAD_SECONDS = Gauge(
    "churn_model_load_seconds", "Seconds the last successful model load took", VERSION_LABELS
)
MODEL_LOAD_FAILURES = Counter("churn_model_load_failures", "Failed model load attempts", ["model_name"])
MODEL_INFO = Gauge(
    "churn_model_info", "1 for the loaded model version (labels describe it)",
    [*VERSION_LABELS, "content_sha256", "model_type", "threshold"],
)  # fmt: skip
MODEL_READY = Gauge("churn_model_ready", "1 while a model is loaded and serving", ["model_name"])
PAYLOAD_LOG_ROWS = Counter("churn_payload_log_rows", "Rows written to the payload log")
PAYLOAD_LOG_DROPPED = Counter(
    "churn_payload_log_dropped_rows",
    "Rows not logged because the queue was full or a write failed",
    ["reason"],
)

# Seconds from an inference request's headers to its answer handed to the HTTP server, body
# upload included (what a caller waits for, less the network), by the status class answered.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
SCORE_BUCKETS = tuple(round(b, 2) for b in np.arange(0.05, 1.0001, 0.05))
SMALL_BATCH = 8
OUTCOMES = ("ok", "invalid", "error")
CODES = ("2xx", "4xx", "5xx")
LATENCY_LABELS = [*VERSION_LABELS, "code"]


class Buckets:
    """One histogram series: counts per bucket (not cumulative; the last is +Inf) and the sum.

    A value lands in the first bucket whose upper bound it does not exceed, as Prometheus' ``le``
    and ``prometheus_client.Histogram`` count it. Not thread-safe: its owner holds a lock.
    """

    __slots__ = ("_array_bounds", "bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]):
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0
        self._array_bounds = np.asarray(bounds, dtype=np.float64)

    def add(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value

    def add_many(self, values: np.ndarray) -> None:
        """A batch at once: numpy past :data:`SMALL_BATCH` values (its per-call cost is ~9 µs)."""
        if len(values) <= SMALL_BATCH:
            for value in values.tolist():
                self.add(value)
            return
        found = np.bincount(
            np.searchsorted(self._array_bounds, values, side="left"), minlength=len(self.counts)
        )
        self.counts = [a + b for a, b in zip(self.counts, found.tolist(), strict=True)]
        self.total += float(values.sum(dtype=np.float64))

    def snapshot(self) -> tuple[list[int], float]:
        return list(self.counts), self.total


class VersionSeries:
    """The request-path series of one model version (``labels``: the values of ``VERSION_LABELS``).

    Plain numbers under one lock, exposed by a collector, instead of ``prometheus_client``
    children: a one-row request updates five series, which cost ~10 µs through
    ``Counter.inc``/``Histogram.observe`` (a lock each, a label check each) and ~1 µs here.
    The exposition is the one those children would give (``tests/serving/test_metrics.py``
    compares them). Get one with :func:`version_series`: a reload of the same version keeps counting
    on the same series.
    """

    def __init__(self, labels: tuple[str, str, str]):
        self.labels = labels
        self.created = time.time()
        self._lock = threading.Lock()
        self._requests = dict.fromkeys(OUTCOMES, 0)
        self._ok_rows = self._error_rows = self._positives = 0
        self._latency = {code: Buckets(LATENCY_BUCKETS) for code in CODES}
        self._scores = Buckets(SCORE_BUCKETS)

    def answered(self, seconds: float, status: int) -> None:
        """An inference request answered with HTTP ``status`` after ``seconds``."""
        latency = self._latency["2xx" if status < 400 else "4xx" if status < 500 else "5xx"]
        with self._lock:
            latency.add(seconds)

    def scored(self, scores: np.ndarray, churn: np.ndarray) -> None:
        """A scored request: its P(churn) per row and the decisions at the threshold."""
        positives = int(np.count_nonzero(churn)) if len(churn) > SMALL_BATCH else churn.tolist().count(True)
        with self._lock:
            self._requests["ok"] += 1
            self._ok_rows += len(scores)
            self._positives += positives
            self._scores.add_many(scores)

    def rejected(self) -> None:
        """A request validation refused."""
        with self._lock:
            self._requests["invalid"] += 1

    def failed(self, rows: int) -> None:
        """A request of ``rows`` rows ONNX Runtime failed to score."""
        with self._lock:
            self._requests["error"] += 1
            self._error_rows += rows

    def snapshot(self) -> dict:
        with self._lock:
            return {
                "requests": dict(self._requests),
                "rows": {"ok": self._ok_rows, "error": self._error_rows},
                "positives": self._positives,
                "latency": {code: b.snapshot() for code, b in self._latency.items()},
                "scores": self._scores.snapshot(),
            }


_SERIES: dict[tuple[str, str, str], VersionSeries] = {}
_LOCK = threading.Lock()  # makes the per-version series and the stage collector once


def version_series(labels: tuple[str, str, str]) -> VersionSeries:
    """The series of the version ``labels`` names, made on its first load."""
    with _LOCK:
        if labels not in _SERIES:
            _SERIES[labels] = VersionSeries(labels)
        return _SERIES[labels]


def _histogram(
    family: HistogramMetricFamily, labels: list[str], les: list[str], counts: list[int], total: float
):
    """One series of ``family`` from per-bucket counts (``les``: the bucket labels, +Inf last)."""
    cumulative = [float(n) for n in itertools.accumulate(counts)]
    family.add_metric(labels, list(zip(les, cumulative, strict=True)), total)


class VersionCollector:
    """Exposes every :class:`VersionSeries`: requests, rows, positive decisions, latency, scores."""

    latency_les = [*map(floatToGoString, LATENCY_BUCKETS), "+Inf"]
    score_les = [*(f"{b:g}" for b in SCORE_BUCKETS), "+Inf"]  # the le labels the dashboards query

    def collect(self):
        requests = CounterMetricFamily(
            "churn_requests", "Inference requests by model version and outcome (ok, invalid, error)",
            labels=[*VERSION_LABELS, "outcome"],
        )  # fmt: skip
        rows = CounterMetricFamily(
            "churn_rows",
            "Rows scored or rejected, by model version and outcome",
            labels=[*VERSION_LABELS, "outcome"],
        )
        positives = CounterMetricFamily(
            "churn_positive_predictions",
            "Rows predicted to churn at the model's threshold (positive rate: divide by churn_rows_total ok)",
            labels=list(VERSION_LABELS),
        )
        latency = HistogramMetricFamily(
            "churn_request_duration_seconds",
            "Inference request latency by model version and status class (2xx, 4xx, 5xx)",
            labels=LATENCY_LABELS,
        )
        scores = HistogramMetricFamily(
            "churn_prediction_score",
            "Predicted churn probability per scored row",
            labels=list(VERSION_LABELS),
        )
        with _LOCK:
            every = list(_SERIES.values())
        for series in every:
            now, labels, created = series.snapshot(), list(series.labels), series.created
            for outcome, n in now["requests"].items():
                requests.add_metric([*labels, outcome], float(n), created)
            for outcome, n in now["rows"].items():
                rows.add_metric([*labels, outcome], float(n), created)
            positives.add_metric(labels, float(now["positives"]), created)
            for code, (counts, total) in now["latency"].items():
                series_labels = [*labels, code]
                _histogram(latency, series_labels, self.latency_les, counts, total)
                created_labels = dict(zip(LATENCY_LABELS, series_labels, strict=True))
                latency.add_sample(f"{latency.name}_created", created_labels, created)  # as Histogram gives
            counts, total = now["scores"]
            if any(counts):  # as before: no score series for a version that scored nothing (nor _created)
                _histogram(scores, labels, self.score_les, counts, total)
        yield from (requests, rows, positives, latency, scores)


REGISTRY.register(VersionCollector())


class StageTimes:
    """kserve's stage histograms (``request_preprocess_seconds``, ``request_predict_seconds``,
    ``request_postprocess_seconds``) with the lean route's observations counted here.

    kserve's generic route observes its ``Histogram`` children (two locks and a label check each,
    ~1.7 µs); the lean route counts a request's three stage times in :class:`Buckets` under one
    lock instead (:meth:`ModelStages.observe`), and this collector, registered in place of kserve's
    three, adds those counts to the samples kserve's histograms give. One per process:
    :func:`stage_times`.
    """

    def __init__(self, histograms: tuple[Histogram, ...], registry=REGISTRY):
        self.histograms = histograms
        self._lock = threading.Lock()
        self._models: dict[str, ModelStages] = {}
        for histogram in histograms:
            registry.unregister(histogram)
        registry.register(self)

    def model(self, name: str) -> ModelStages:
        with self._lock:
            if name not in self._models:
                les = []
                for histogram in self.histograms:
                    histogram.labels(name)  # the child the counts are added to
                    samples = [
                        s for f in histogram.collect() for s in f.samples if s.name.endswith("_bucket")
                    ]
                    les.append([s.labels["le"] for s in samples if s.labels["model_name"] == name])
                self._models[name] = ModelStages(les)
            return self._models[name]

    def collect(self):
        with self._lock:
            counted = {name: stages.snapshot() for name, stages in self._models.items()}
        for i, histogram in enumerate(self.histograms):
            for family in histogram.collect():
                family.samples = [
                    _added(s, counted.get(s.labels.get("model_name")), i) for s in family.samples
                ]
                yield family


class ModelStages:
    """One model's counts of the stage times, one :class:`Buckets` per kserve histogram."""

    def __init__(self, les: list[list[str]]):
        self.les = les
        self._lock = threading.Lock()
        self._buckets = [Buckets(tuple(float(le) for le in bounds[:-1])) for bounds in les]  # +Inf last

    def observe(self, *seconds: float) -> None:
        """One request's time in each stage, in the order of the histograms."""
        with self._lock:
            for buckets, value in zip(self._buckets, seconds, strict=True):
                buckets.add(value)

    def snapshot(self) -> list[tuple[dict[str, int], float]]:
        """Per histogram: the cumulative count at each ``le`` label, and the sum."""
        with self._lock:
            counted = [b.snapshot() for b in self._buckets]
        return [
            (dict(zip(les, itertools.accumulate(counts), strict=True)), total)
            for les, (counts, total) in zip(self.les, counted, strict=True)
        ]


def _added(sample, counted: list | None, histogram: int):
    """``sample`` of a kserve stage histogram plus the lean route's counts for its model, if any."""
    if counted is None:
        return sample
    cumulative, total = counted[histogram]
    if sample.name.endswith("_bucket"):
        return sample._replace(value=sample.value + cumulative[sample.labels["le"]])
    if sample.name.endswith("_count"):
        return sample._replace(value=sample.value + cumulative["+Inf"])
    if sample.name.endswith("_sum"):
        return sample._replace(value=sample.value + total)
    return sample  # _created


_STAGES: list[StageTimes] = []


def stage_times(model_name: str) -> ModelStages:
    """Where the lean route counts ``model_name``'s stage times (the collector installed on first use)."""
    with _LOCK:
        if not _STAGES:
            _STAGES.append(StageTimes((PRE_HIST_TIME, PREDICT_HIST_TIME, POST_HIST_TIME)))
    return _STAGES[0].model(model_name)
