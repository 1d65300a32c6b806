"""The drift statistics on fixed inputs: against scipy, and PSI / KL / JS against a second,
independent implementation written here from the textbook formulas (plain Python loops)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from components.monitoring import stats
from components.reference import bin_counts, numeric_bins, numeric_cuts

REFERENCE = [120, 340, 0, 95, 445]  # an empty bin: smoothing must keep PSI and KL finite
CURRENT = [80, 300, 12, 150, 458]


def _textbook(reference, current, smoothing):
    """PSI, KL(q||p) and JS distance, one bin at a time."""
    k = len(reference)
    n_ref, n_cur = sum(reference) + smoothing * k, sum(current) + smoothing * k
    psi = kl = 0.0
    for r, c in zip(reference, current, strict=True):
        p, q = (r + smoothing) / n_ref, (c + smoothing) / n_cur
        psi += (q - p) * math.log(q / p)
        kl += q * math.log(q / p)
    p = [r / sum(reference) for r in reference]
    q = [c / sum(current) for c in current]
    m = [(a + b) / 2 for a, b in zip(p, q, strict=True)]
    divergence = sum(a * math.log2(a / b) for a, b in zip(p, m, strict=True) if a > 0) / 2
    divergence += sum(a * math.log2(a / b) for a, b in zip(q, m, strict=True) if a > 0) / 2
    return psi, kl, math.sqrt(divergence)


def test_psi_kl_js_match_an_independent_implementation():
    psi, kl, js = _textbook(REFERENCE, CURRENT, stats.SMOOTHING)
    assert stats.psi(REFERENCE, CURRENT) == pytest.approx(psi, rel=1e-12)
    assert stats.kl(REFERENCE, CURRENT) == pytest.approx(kl, rel=1e-12)
    assert stats.js_distance(REFERENCE, CURRENT) == pytest.approx(js, rel=1e-12)
    assert stats.psi(REFERENCE, CURRENT) == pytest.approx(0.5, abs=0.5)  # finite despite the empty bin


def test_identical_distributions_have_zero_effect_and_disjoint_ones_the_maximum():
    assert stats.psi([10, 20, 30], [10, 20, 30]) == pytest.approx(0.0, abs=1e-12)
    assert stats.psi([10, 20, 30], [20, 40, 60], smoothing=0.0) == pytest.approx(0.0, abs=1e-12)
    assert stats.psi([10, 20, 30], [20, 40, 60]) < 1e-4  # pseudo-counts weigh less in the larger sample
    assert stats.js_distance([10, 20, 30], [1, 2, 3]) == pytest.approx(0.0, abs=1e-7)
    assert stats.js_distance([10, 0], [0, 10]) == pytest.approx(1.0)


def test_ks_is_scipys_two_sample_test():
    rng = np.random.default_rng(3)
    a, b = rng.normal(0, 1, 700), rng.normal(0.2, 1, 900)
    expected = scipy_stats.ks_2samp(a, b)
    assert stats.ks_test(a, b) == (pytest.approx(expected.statistic), pytest.approx(expected.pvalue))


def test_chi2_is_scipys_homogeneity_test_and_ignores_bins_empty_on_both_sides():
    expected = scipy_stats.chi2_contingency(np.array([[120, 340, 95], [80, 300, 150]]), correction=False)
    statistic, pvalue = stats.chi2_test([120, 340, 0, 95], [80, 300, 0, 150])
    assert (statistic, pvalue) == (pytest.approx(expected[0]), pytest.approx(expected[1]))


def test_benjamini_hochberg_and_holm_on_fixed_pvalues():
    p = [0.01, 0.04, 0.03, 0.20]
    # BH: p_(i) * m / i, made monotone from the largest down: 0.04, 0.0533, 0.0533, 0.20
    assert stats.adjust_pvalues(p, "bh") == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.20])
    assert stats.adjust_pvalues(p, "bh") == pytest.approx(scipy_stats.false_discovery_control(p))
    # Holm: sorted 0.01*4, 0.03*3, 0.04*2, 0.20*1 made monotone upward: 0.04, 0.09, 0.09, 0.20
    assert stats.adjust_pvalues(p, "holm") == pytest.approx([0.04, 0.09, 0.09, 0.20])
    with pytest.raises(ValueError, match="'bh' or 'holm'"):
        stats.adjust_pvalues(p, "bonferroni")


def test_quantile_bins_give_integer_features_one_bin_per_value():
    values = np.array([0] * 84 + [1] * 16, dtype=float)  # SeniorCitizen-like
    cuts = numeric_cuts(values)
    assert cuts == [0.0, 1.0]
    assert bin_counts(cuts, values).tolist() == [84, 16, 0]  # (-inf, 0], (0, 1], (1, inf)
    assert numeric_bins(cuts, np.array([-5.0, 0.0, 0.5, 1.0, 7.0])).tolist() == [0, 0, 1, 1, 2]
