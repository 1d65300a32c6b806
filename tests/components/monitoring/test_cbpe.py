"""CBPE (label-free performance estimation) on the generator's TRUE probabilities."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from components import schema
from components.monitoring import cbpe
from components.synthetic import generate
from tests.support.payload_logs import THRESHOLD

SEEDS = tuple(range(100, 110))


def _truth(seed: int, rows: int = 20_000):
    frame = generate(rows, seed=seed)
    return frame[schema.TRUTH_COLUMN].to_numpy(), (frame[schema.LABEL_COLUMN] == "Yes").to_numpy().astype(int)


def test_estimate_is_within_its_own_interval_of_the_realised_auc_in_at_least_9_of_10_seeds(capsys):
    pairs = []
    for seed in SEEDS:
        p, y = _truth(seed)
        estimate = cbpe.estimate_from_scores(p, THRESHOLD, seed=seed)
        realised = float(roc_auc_score(y, p))
        pairs.append(
            (
                seed,
                estimate.roc_auc.value,
                estimate.low,
                estimate.high,
                realised,
                estimate.roc_auc.contains(realised),
            )
        )
    with capsys.disabled():
        print("\nseed  estimated  [interval]           realised  inside")
        for seed, value, low, high, realised, inside in pairs:
            print(f"{seed}   {value:.4f}     [{low:.4f}, {high:.4f}]   {realised:.4f}    {inside}")
    assert sum(inside for *_, inside in pairs) >= 9, pairs
    widths = [high - low for _, _, low, high, _, _ in pairs]
    assert 0.005 < np.median(widths) < 0.03  # an interval that says something at 20k rows


def test_expected_confusion_matrix_matches_realised_rates_on_calibrated_scores():
    p, y = _truth(7, 100_000)
    estimate = cbpe.estimate_from_scores(p, THRESHOLD)
    predicted = p >= THRESHOLD
    assert estimate.churn_rate.contains(y.mean())
    assert estimate.precision.contains(y[predicted].mean())
    assert estimate.recall.contains(y[predicted].sum() / y.sum())


def test_merged_histograms_give_the_estimate_of_the_whole():
    p, _ = _truth(8, 10_000)
    whole = cbpe.estimate(*cbpe.histogram(p), THRESHOLD)
    (c1, s1), (c2, s2) = cbpe.histogram(p[:3_000]), cbpe.histogram(p[3_000:])
    assert cbpe.estimate(c1 + c2, s1 + s2, THRESHOLD) == whole


def test_binned_auc_equals_the_exact_auc_of_fractional_labels():
    """The estimate is the AUC of each row counted p positive and 1 - p negative: check it against
    sklearn's weighted AUC on the rows duplicated as one positive and one negative."""
    p, _ = _truth(9, 5_000)
    p = np.round(p, 3) + 0.0004  # one score per CBPE bin, so binning is exact
    weighted = roc_auc_score(
        np.r_[np.ones_like(p), np.zeros_like(p)], np.r_[p, p], sample_weight=np.r_[p, 1 - p]
    )
    assert cbpe.estimate_from_scores(p, THRESHOLD).roc_auc.value == pytest.approx(weighted, abs=1e-9)
