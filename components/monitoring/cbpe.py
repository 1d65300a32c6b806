"""Confidence-based performance estimation (CBPE): expected performance from calibrated scores.

If the scores are calibrated (a row scored p churns with probability p), the labels of a window
are unknown but their distribution is not: each row is a Bernoulli(p). So, without labels:

- the expected confusion matrix at threshold t: TP = sum of p over rows with score >= t,
  FP = sum of (1 - p) over them, FN and TN likewise below t;
- the expected ROC AUC: each row contributes p of a positive and 1 - p of a negative at its
  score; the AUC of those fractional counts (ties count one half) is the estimate;
- an interval: labels are drawn from the scores themselves (a parametric bootstrap,
  ``simulations`` times) and the same metrics computed on each draw; the ``level`` central
  interval is where the realised value falls when the scores are calibrated and the churn
  process is the one the model learned.

Everything works on a fine histogram of scores (:data:`BINS` equal-width bins: per bin the row
count and the sum of scores), so a window of any size costs the same memory and the monitor can
merge row groups. A realised value outside the interval is the signature of concept drift: the
estimate alone cannot see it, because it assumes the relation it would have to detect.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

BINS = 1000  # score resolution 0.001; thresholds on the 0.01 grid fall on bin edges
LEVEL = 0.95
SIMULATIONS = 400


@dataclass(frozen=True)
class Interval:
    value: float
    low: float
    high: float

    def contains(self, x: float) -> bool:
        return self.low <= x <= self.high


@dataclass(frozen=True)
class Estimate:
    """Estimated metrics of a window; each with its ``level`` interval under calibration."""

    rows: int
    level: float
    roc_auc: Interval
    churn_rate: Interval
    precision: Interval
    recall: Interval
    threshold: float

    @property
    def low(self) -> float:
        return self.roc_auc.low

    @property
    def high(self) -> float:
        return self.roc_auc.high

    def to_dict(self) -> dict:
        return asdict(self)


def histogram(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(rows per bin, sum of scores per bin)`` on :data:`BINS` equal-width bins of [0, 1]."""
    scores = np.asarray(scores, dtype=np.float64)
    idx = np.clip((scores * BINS).astype(np.int64), 0, BINS - 1)
    return (
        np.bincount(idx, minlength=BINS).astype(np.float64),
        np.bincount(idx, weights=scores, minlength=BINS),
    )


def auc_from_counts(pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
    """ROC AUC from positive/negative counts per ascending score bin (ties one half); works on
    the last axis, so a (simulations, bins) array gives one AUC per simulation."""
    neg_below = np.cumsum(neg, axis=-1) - neg
    total = pos.sum(axis=-1) * neg.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (pos * (neg_below + 0.5 * neg)).sum(axis=-1) / total


def _at_threshold(pos: np.ndarray, neg: np.ndarray, above: np.ndarray):
    tp, fp = pos[..., above].sum(axis=-1), neg[..., above].sum(axis=-1)
    positives = pos.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), np.nan)
        recall = np.where(positives > 0, tp / positives, np.nan)
    return precision, recall


def estimate(
    counts: np.ndarray,
    sums: np.ndarray,
    threshold: float,
    *,
    level: float = LEVEL,
    simulations: int = SIMULATIONS,
    seed: int = 0,
) -> Estimate:
    """CBPE on a score histogram (:func:`histogram`); ``counts.sum()`` must be at least 1."""
    counts, sums = np.asarray(counts, np.float64), np.asarray(sums, np.float64)
    rows = int(counts.sum())
    keep = counts > 0
    counts, sums = counts[keep], sums[keep]
    lower_edge = np.flatnonzero(keep) / BINS
    above = lower_edge >= threshold - 0.5 / BINS
    pos, neg = sums, counts - sums
    precision, recall = _at_threshold(pos, neg, above)

    rng = np.random.default_rng(seed)
    mean_p = np.clip(sums / counts, 0.0, 1.0)
    sim_pos = rng.binomial(counts.astype(np.int64), mean_p, size=(simulations, len(counts))).astype(
        np.float64
    )
    sim_neg = counts - sim_pos
    sim_prec, sim_rec = _at_threshold(sim_pos, sim_neg, above)
    tail = (1 - level) / 2 * 100

    def interval(value: float, draws: np.ndarray) -> Interval:
        draws = draws[np.isfinite(draws)]
        if not len(draws):
            return Interval(float(value), float("nan"), float("nan"))
        low, high = np.percentile(draws, [tail, 100 - tail])
        return Interval(float(value), float(low), float(high))

    return Estimate(
        rows=rows,
        level=level,
        roc_auc=interval(float(auc_from_counts(pos, neg)), auc_from_counts(sim_pos, sim_neg)),
        churn_rate=interval(float(pos.sum() / rows), sim_pos.sum(axis=1) / rows),
        precision=interval(float(precision), sim_prec),
        recall=interval(float(recall), sim_rec),
        threshold=float(threshold),
    )


def estimate_from_scores(scores: np.ndarray, threshold: float, **kwargs) -> Estimate:
    """CBPE straight from scores (the reference, tests); the monitor merges histograms instead."""
    return estimate(*histogram(scores), threshold, **kwargs)
