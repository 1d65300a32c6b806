"""Drift statistics on binned counts (numpy/scipy): PSI, KL, JS distance, KS, chi-square, p-value correction.

Counts come from the reference's bins (:mod:`components.reference`) and the window's counts in
the same bins. PSI and KL need every bin non-empty on both sides, so they use additively
smoothed shares (:data:`SMOOTHING` pseudo-count per bin, the usual fix for empty bins); the
Jensen-Shannon distance is finite with empty bins and uses the raw shares. KS and chi-square are
scipy's; the KS test runs on a reference sample and a uniform sample of the window (see
:mod:`components.monitoring.window`), because exact two-sample KS needs raw values and a sample
keeps memory bounded while its p-value stays valid for the sizes it was computed on.
"""

from __future__ import annotations

import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon

SMOOTHING = 0.5  # pseudo-count added to every bin before PSI / KL (Jeffreys prior)


def shares(counts: np.ndarray, smoothing: float = 0.0) -> np.ndarray:
    """Counts as shares summing to 1, after adding ``smoothing`` to each bin."""
    counts = np.asarray(counts, dtype=np.float64) + smoothing
    return counts / counts.sum()


def psi(reference: np.ndarray, current: np.ndarray, smoothing: float = SMOOTHING) -> float:
    """Population stability index: sum (q - p) ln(q / p), p the reference and q the current shares."""
    p, q = shares(reference, smoothing), shares(current, smoothing)
    return float(np.sum((q - p) * np.log(q / p)))


def kl(reference: np.ndarray, current: np.ndarray, smoothing: float = SMOOTHING) -> float:
    """KL divergence of the current from the reference distribution, KL(q || p), in nats."""
    p, q = shares(reference, smoothing), shares(current, smoothing)
    return float(np.sum(q * np.log(q / p)))


def js_distance(reference: np.ndarray, current: np.ndarray) -> float:
    """Jensen-Shannon distance (square root of the divergence, base 2: 0 same, 1 disjoint)."""
    return float(jensenshannon(shares(reference), shares(current), base=2))


def ks_test(reference_sample: np.ndarray, current_sample: np.ndarray) -> tuple[float, float]:
    """scipy's two-sample Kolmogorov-Smirnov ``(statistic, p-value)``."""
    result = stats.ks_2samp(reference_sample, current_sample)
    return float(result.statistic), float(result.pvalue)


def chi2_test(reference: np.ndarray, current: np.ndarray) -> tuple[float, float]:
    """Chi-square test of homogeneity of two count vectors (bins empty on both sides dropped)."""
    table = np.vstack([reference, current]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 0.0, 1.0
    statistic, pvalue, _, _ = stats.chi2_contingency(table, correction=False)
    return float(statistic), float(pvalue)


def adjust_pvalues(pvalues: list[float], method: str) -> list[float]:
    """Corrected p-values for testing every feature at once: ``"bh"`` (Benjamini-Hochberg, scipy)
    or ``"holm"`` (Holm-Bonferroni step-down)."""
    p = np.asarray(pvalues, dtype=np.float64)
    if not len(p):
        return []
    if method == "bh":
        return stats.false_discovery_control(p, method="bh").tolist()
    if method == "holm":
        order = np.argsort(p)
        stepped = np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order])
        out = np.empty_like(p)
        out[order] = np.minimum(stepped, 1.0)
        return out.tolist()
    raise ValueError(f"p-value correction must be 'bh' or 'holm', got {method!r}")
