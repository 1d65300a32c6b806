"""The score histogram counts the same whether rows arrive one at a time or in one batch."""

from __future__ import annotations

import numpy as np

from serving.metrics import SCORE_BUCKETS, SMALL_BATCH, ScoreHistogram

LABELS = ("churn", "0123456789ab", "7")  # model name, content id, registry version


def samples(histogram: ScoreHistogram) -> dict:
    (family,) = histogram.collect()
    return {(s.name, s.labels.get("le")): s.value for s in family.samples}


def test_single_rows_and_batches_fill_the_same_buckets():
    scores = np.random.default_rng(1).uniform(size=200).astype(np.float32)
    scores[:4] = [0.0, SCORE_BUCKETS[0], SCORE_BUCKETS[1], 1.0]  # exactly on bucket bounds
    one_by_one, batched = ScoreHistogram(), ScoreHistogram()
    for i in range(0, len(scores), SMALL_BATCH):  # the small-batch path
        one_by_one.observe(LABELS, scores[i : i + SMALL_BATCH])
    batched.observe(LABELS, scores)  # the numpy path
    a, b = samples(one_by_one), samples(batched)
    assert a.keys() == b.keys() and a[("churn_prediction_score_count", None)] == 200
    assert all(abs(a[k] - b[k]) < 1e-6 for k in a)
