"""Prometheus metrics of the churn predictor (kserve's own latency histograms sit beside them).

All live in the default registry, which kserve serves on ``/metrics``. Per-version series carry
the model's two identities as separate labels, so neither changes meaning with where the bundle
came from: ``content_id`` (12 hex digits of the ONNX graph's sha256) and ``registry_version``
(the MLflow version number, ``unregistered`` for a bundle served from a run folder).
"""

from __future__ import annotations

import bisect
import threading

import numpy as np
from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import HistogramMetricFamily

VERSION_LABELS = ("model_name", "content_id", "registry_version")

REQUESTS = Counter(
    "churn_requests", "Inference requests by model version and outcome (ok, invalid, error)",
    [*VERSION_LABELS, "outcome"],
)  # fmt: skip
ROWS = Counter(
    "churn_rows", "Rows scored or rejected, by model version and outcome", [*VERSION_LABELS, "outcome"]
)
POSITIVES = Counter(
    "churn_positive_predictions",
    "Rows predicted to churn at the model's threshold (positive rate: divide by churn_rows_total ok)",
    VERSION_LABELS,
)
VALIDATION_ERRORS = Counter(
    "churn_validation_errors", "Rejected requests by validation reason", ["model_name", "reason"]
)
UNKNOWN_CATEGORIES = Counter(
    "churn_unknown_categories", "Scored values not among the training categories, by version and feature",
    [*VERSION_LABELS, "feature"],
)  # fmt: skip
# Seconds from an inference request's headers to its answer handed to the HTTP server, body
# upload included (what a caller waits for, less the network), by the status class answered.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REQUEST_SECONDS = Histogram(
    "churn_request_duration_seconds",
    "Inference request latency by model version and status class (2xx, 4xx, 5xx)",
    [*VERSION_LABELS, "code"],
    buckets=LATENCY_BUCKETS,
)
# Requests the lean HTTP protocol scored together in one ONNX Runtime run (serving.lean_http's
# Coalescer: requests read in the same event-loop turn while several connections are open).
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

SMALL_BATCH = 8
SCORE_BUCKETS = tuple(round(b, 2) for b in np.arange(0.05, 1.0001, 0.05))


class ScoreHistogram:
    """``churn_prediction_score`` histogram, observed a whole batch at a time.

    ``prometheus_client.Histogram.observe`` costs ~1 µs per value under a lock; a 1,000-row
    request would spend a millisecond there. Counting with numpy and exposing through a
    collector keeps the per-request cost flat.
    """

    name = "churn_prediction_score"

    def __init__(self, buckets: tuple[float, ...] = SCORE_BUCKETS):
        self._bounds = np.asarray(buckets, dtype=np.float64)
        self._bounds_list = list(buckets)
        self._lock = threading.Lock()
        self._series: dict[tuple[str, ...], list] = {}

    def observe(self, labels: tuple[str, ...], scores: np.ndarray) -> None:
        """Add a batch of scores in [0, 1] to the series of ``labels`` (values of ``VERSION_LABELS``)."""
        if len(scores) <= SMALL_BATCH:  # bisect beats numpy's per-call overhead (~9 µs) on a few rows
            values = scores.tolist()
            with self._lock:
                counts, total = self._series_for(labels)
                for value in values:
                    counts[bisect.bisect_left(self._bounds_list, value)] += 1
                total[0] += sum(values)
            return
        counts = np.bincount(
            np.searchsorted(self._bounds, scores, side="left"), minlength=len(self._bounds) + 1
        )
        total = float(scores.sum(dtype=np.float64))
        with self._lock:
            series = self._series_for(labels)
            series[0] += counts
            series[1][0] += total

    def _series_for(self, labels: tuple[str, ...]) -> list:
        """``[bucket counts (numpy), [sum]]`` of one series; call under the lock."""
        if labels not in self._series:
            self._series[labels] = [np.zeros(len(self._bounds) + 1, np.int64), [0.0]]
        return self._series[labels]

    def collect(self):
        family = HistogramMetricFamily(
            self.name, "Predicted churn probability per scored row", labels=list(VERSION_LABELS)
        )
        with self._lock:
            snapshot = [(k, v[0].copy(), v[1][0]) for k, v in self._series.items()]
        for labels, counts, total in snapshot:
            cumulative = np.cumsum(counts)
            buckets = [(f"{b:g}", float(c)) for b, c in zip(self._bounds, cumulative[:-1], strict=True)]
            buckets.append(("+Inf", float(cumulative[-1])))
            family.add_metric(list(labels), buckets, total)
        yield family


SCORES = ScoreHistogram()
REGISTRY.register(SCORES)


class VersionSeries:
    """The request-path series of one model version, labelled once at load (``labels()`` costs ~2 µs).

    ``labels`` are the values of ``VERSION_LABELS``: model name, content id, registry version.
    """

    def __init__(self, labels: tuple[str, str, str]):
        self.labels = labels
        self.ok_requests, self.invalid_requests, self.error_requests = (
            REQUESTS.labels(*labels, outcome) for outcome in ("ok", "invalid", "error")
        )
        self.ok_rows, self.error_rows = (ROWS.labels(*labels, o) for o in ("ok", "error"))
        self.positives = POSITIVES.labels(*labels)
        self.latency = {code: REQUEST_SECONDS.labels(*labels, code) for code in ("2xx", "4xx", "5xx")}

    def answered(self, seconds: float, status: int) -> None:
        """An inference request answered with HTTP ``status`` after ``seconds``."""
        code = "2xx" if status < 400 else "4xx" if status < 500 else "5xx"
        self.latency[code].observe(seconds)

    def scored(self, scores: np.ndarray, churn: np.ndarray) -> None:
        self.ok_requests.inc()
        self.ok_rows.inc(len(scores))
        positives = int(np.count_nonzero(churn))
        if positives:  # inc(0) changes nothing but costs its lock
            self.positives.inc(positives)
        SCORES.observe(self.labels, scores)
