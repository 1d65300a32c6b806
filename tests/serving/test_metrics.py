"""The request-path series expose what prometheus_client's own metrics would, however rows arrive."""

from __future__ import annotations

import re

import numpy as np
import pytest
from kserve.metrics import POST_HIST_TIME, PRE_HIST_TIME, PREDICT_HIST_TIME
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

from serving.metrics import (
    CODES,
    LATENCY_BUCKETS,
    OUTCOMES,
    SCORE_BUCKETS,
    SMALL_BATCH,
    VERSION_LABELS,
    VersionCollector,
    stage_times,
    version_series,
)


def exposition(registry: CollectorRegistry, content_id: str) -> dict[str, list[str]]:
    """Both text formats' lines of one version's series, ``_created`` values masked."""
    out = {}
    for name, generate in (("text", generate_latest), ("openmetrics", generate_openmetrics)):
        lines = generate(registry).decode().splitlines()
        mine = [line for line in lines if f'content_id="{content_id}"' in line]
        out[name] = [re.sub(r"(_created\{[^}]*\}) \S+", r"\1 T", line) for line in mine]
    return out


def test_exposition_is_what_prometheus_clients_own_metrics_give():
    labels = ("churn", "0000feedbeef", "7")
    reference = CollectorRegistry()
    docs = {family.name: family.documentation for family in VersionCollector().collect()}

    def counter(name: str, labelnames) -> Counter:
        return Counter(name, docs[name], labelnames, registry=reference)

    requests = counter("churn_requests", [*VERSION_LABELS, "outcome"])
    rows = counter("churn_rows", [*VERSION_LABELS, "outcome"])
    positives = counter("churn_positive_predictions", VERSION_LABELS)
    latency = Histogram("churn_request_duration_seconds", docs["churn_request_duration_seconds"],
                        [*VERSION_LABELS, "code"], buckets=LATENCY_BUCKETS, registry=reference)  # fmt: skip
    for outcome in OUTCOMES:  # children made at load, as the series are
        requests.labels(*labels, outcome)
    for outcome in ("ok", "error"):
        rows.labels(*labels, outcome)
    positives.labels(*labels)
    for code in CODES:
        latency.labels(*labels, code)

    series = version_series(labels)
    answers = [(0.0003, 200), (LATENCY_BUCKETS[0], 200), (0.02, 404), (12.0, 500), (0.0049, 201), (1.0, 503)]
    for seconds, status in answers:
        series.answered(seconds, status)
        code = "2xx" if status < 400 else "4xx" if status < 500 else "5xx"
        latency.labels(*labels, code).observe(seconds)
    rng = np.random.default_rng(3)
    for n in (1, 3, SMALL_BATCH, SMALL_BATCH + 1, 40):  # both counting paths
        scores = rng.uniform(size=n).astype(np.float32)
        series.scored(scores, scores >= 0.5)
        requests.labels(*labels, "ok").inc()
        rows.labels(*labels, "ok").inc(n)
        positives.labels(*labels).inc(int((scores >= 0.5).sum()))
    series.rejected()
    requests.labels(*labels, "invalid").inc()
    series.failed(4)
    requests.labels(*labels, "error").inc()
    rows.labels(*labels, "error").inc(4)

    ours = CollectorRegistry()
    ours.register(VersionCollector())
    theirs, mine = exposition(reference, labels[1]), exposition(ours, labels[1])
    for form in ("text", "openmetrics"):
        expected = theirs[form]
        got = [line for line in mine[form] if "churn_prediction_score" not in line]
        assert got == expected, form
    assert version_series(labels) is series  # a reload of the version counts on


def score_samples(content_id: str) -> dict[str, float]:
    """One version's ``churn_prediction_score`` samples, by name and ``le`` (content id left out)."""
    registry = CollectorRegistry()
    registry.register(VersionCollector())
    out = {}
    for line in exposition(registry, content_id)["text"]:
        if line.startswith("churn_prediction_score"):
            key, value = line.rsplit(" ", 1)
            out[key.replace(f'content_id="{content_id}",', "")] = float(value)
    return out


@pytest.mark.parametrize("batch", [1, SMALL_BATCH, 200])
def test_scores_fill_the_same_buckets_one_row_at_a_time_or_in_batches(batch):
    scores = np.random.default_rng(1).uniform(size=200).astype(np.float32)
    scores[:4] = [0.0, SCORE_BUCKETS[0], SCORE_BUCKETS[1], 1.0]  # exactly on bucket bounds
    single, batched = f"single{batch:06d}", f"batch0{batch:06d}"
    for value in scores:
        version_series(("churn", single, "1")).scored(value[None], value[None] >= 0.5)
    for i in range(0, len(scores), batch):
        part = scores[i : i + batch]
        version_series(("churn", batched, "1")).scored(part, part >= 0.5)
    a, b = score_samples(single), score_samples(batched)
    assert a.keys() == b.keys() and len(a) == len(SCORE_BUCKETS) + 3  # the bounds, +Inf, count, sum
    assert all(abs(a[k] - b[k]) < 1e-6 for k in a)
    count = next(v for k, v in a.items() if k.startswith("churn_prediction_score_count"))
    first = next(v for k, v in a.items() if 'le="0.05"' in k)
    # le: a value on the bound counts in it (compared as float64: float32(0.05) is just above 0.05)
    assert count == 200 and first == int((scores.astype(np.float64) <= SCORE_BUCKETS[0]).sum())


def test_stage_times_add_to_kserves_own_histograms_as_if_observed_there():
    """The lean route's stage times (counted here) plus the generic route's (observed by kserve) expose
    as one kserve histogram per stage observing them all."""
    name = "stage-test-model"
    stages = stage_times(name)
    reference = CollectorRegistry()
    docs = [(PRE_HIST_TIME, "request_preprocess_seconds", "pre-process request latency"),
            (PREDICT_HIST_TIME, "request_predict_seconds", "predict request latency"),
            (POST_HIST_TIME, "request_postprocess_seconds", "post-process request latency")]  # fmt: skip
    theirs = [Histogram(metric, doc, ["model_name"], registry=reference) for _, metric, doc in docs]
    lean = [(0.00002, 0.00004, 0.000007), (Histogram.DEFAULT_BUCKETS[0], 0.3, 0.02), (1.5, 20.0, 0.0)]
    for times in lean:
        stages.observe(*times)
        for histogram, value in zip(theirs, times, strict=True):
            histogram.labels(name).observe(value)
    for value in (0.0001, 0.07):  # the generic route observes kserve's own
        for (kserve, *_), histogram in zip(docs, theirs, strict=True):
            kserve.labels(name).observe(value)
            histogram.labels(name).observe(value)

    def lines(registry) -> list[str]:
        text = generate_latest(registry).decode().splitlines()
        mine = [line for line in text if f'model_name="{name}"' in line and line.startswith("request_")]
        return [re.sub(r"(_created\{[^}]*\}) \S+", r"\1 T", line) for line in mine]

    got = lines(REGISTRY)
    assert got == lines(reference) and len(got) == 3 * (len(Histogram.DEFAULT_BUCKETS) + 3)
    assert stage_times(name) is stages
