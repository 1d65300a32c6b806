"""The quality gate: floors, calibration bound, regression tolerance, and a champion that could not be
re-scored."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from components.gate import GateConfig, GateInputError, evaluate_gate, score


def test_gate_config_rejects_bad_values_naming_the_field():
    with pytest.raises(GateInputError, match="min_pr_auc"):
        GateConfig(min_pr_auc=1.5)
    with pytest.raises(GateInputError, match="max_regression"):
        GateConfig(max_regression=float("nan"))
    with pytest.raises(GateInputError, match="max_ece"):
        GateConfig(max_ece=-0.1)


def test_gate_floors_and_regression_tolerance():
    gate = GateConfig(min_roc_auc=0.7, min_pr_auc=0.4, max_regression=0.01)
    champion = {"roc_auc": 0.85, "pr_auc": 0.60, "ece": 0.02}
    assert evaluate_gate({"roc_auc": 0.845, "pr_auc": 0.595, "ece": 0.02}, gate, champion, "1").passed
    result = evaluate_gate({"roc_auc": 0.83, "pr_auc": 0.61, "ece": 0.02}, gate, champion, "1")
    assert not result.passed
    assert len(result.reasons) == 1 and "roc_auc" in result.reasons[0] and "champion v1" in result.reasons[0]
    floors = evaluate_gate({"roc_auc": 0.69, "pr_auc": 0.39, "ece": 0.02}, gate)
    assert not floors.passed and len(floors.reasons) == 2


def test_unscorable_champion_is_an_input_and_the_result_is_frozen():
    gate = GateConfig()
    why = "champion v4 could not be re-scored on this test split (gone)"
    result = evaluate_gate(
        {"roc_auc": 0.9, "pr_auc": 0.7, "ece": 0.02}, gate, champion_version="4", champion_unscorable=why
    )
    assert not result.passed and result.reasons == (why,) and result.checks[-1] == why
    assert result.champion_version == "4" and result.champion is None
    assert result.to_dict()["reasons"] == [why] and result.to_dict()["verdict"] == "failed"
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.passed = True  # type: ignore[misc]
    with pytest.raises(GateInputError, match="champion_unscorable"):
        evaluate_gate({"roc_auc": 0.9, "pr_auc": 0.7, "ece": 0.02}, gate, champion_unscorable=why)


def test_a_refused_comparison_is_its_own_verdict():
    gate = GateConfig(min_disjoint_rows=200)
    why = "only 50 rows neither model trained on < minimum 200"
    refused = evaluate_gate(
        {"roc_auc": 0.9, "pr_auc": 0.7, "ece": 0.02}, gate, champion_version="3", comparison_refused=why
    )
    assert refused.verdict == "refused" and not refused.passed and refused.reasons == (why,)
    assert refused.to_dict()["verdict"] == "refused"
    # a candidate below the floors fails, whether or not the comparison was possible
    low = evaluate_gate(
        {"roc_auc": 0.6, "pr_auc": 0.7, "ece": 0.02}, gate, champion_version="3", comparison_refused=why
    )
    assert low.verdict == "failed" and why in low.reasons
    with pytest.raises(GateInputError, match="min_disjoint_rows"):
        GateConfig(min_disjoint_rows=0)
    with pytest.raises(GateInputError, match="min_disjoint_rows"):
        GateConfig(min_disjoint_rows=2.5)


def test_a_miscalibrated_candidate_fails_with_a_clear_reason():
    gate = GateConfig(max_ece=0.05)
    assert evaluate_gate({"roc_auc": 0.9, "pr_auc": 0.7, "ece": 0.05}, gate).passed  # the bound itself passes
    result = evaluate_gate({"roc_auc": 0.9, "pr_auc": 0.7, "ece": 0.151}, gate)
    assert result.verdict == "failed" and len(result.reasons) == 1
    assert "calibration error (ECE, 15 bins) 0.1510 > bound 0.0500" in result.reasons[0]
    assert "recalibrate" in result.reasons[0]
    # a failed calibration bound is a failure, not a refusal, even when no comparison was possible
    refused = evaluate_gate(
        {"roc_auc": 0.9, "pr_auc": 0.7, "ece": 0.2}, gate, champion_version="3", comparison_refused="too few"
    )
    assert refused.verdict == "failed"
    with pytest.raises(GateInputError, match="'ece'"):
        evaluate_gate({"roc_auc": 0.9, "pr_auc": 0.7}, gate)


def test_gate_scores_include_the_calibration_error():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=4000)
    y = (rng.uniform(size=4000) < p).astype(int)  # calibrated by construction
    honest, inflated = score(y, p), score(y, np.sqrt(p))  # sqrt: same ranking, inflated scores
    assert honest["ece"] < 0.03 < 0.1 < inflated["ece"]
    assert honest["roc_auc"] == inflated["roc_auc"]
    assert not evaluate_gate(inflated, GateConfig()).passed and evaluate_gate(honest, GateConfig()).passed


def test_the_calibration_bound_allows_the_sampling_noise_of_a_small_test_split():
    """A perfectly calibrated model scored on a few hundred rows shows an ECE above 0.05 by chance
    alone (a 2,000-row `churn run` has 400 test rows): the gate must pass it (at least 90 of 100
    label draws; the noise allowance is the 95th percentile), yet on a large split the same bound
    still fails inflated scores."""
    rng = np.random.default_rng(3)
    p = rng.beta(1.2, 3.0, size=300)
    draws = [score((rng.uniform(size=p.size) < p).astype(int), p) for _ in range(100)]
    assert sum(d["ece"] > GateConfig().max_ece for d in draws) > 30  # what the plain bound failed
    results = [evaluate_gate(d, GateConfig()) for d in draws]
    assert sum(r.passed for r in results) >= 90
    above = next(
        r for d, r in zip(draws, results, strict=True) if r.passed and d["ece"] > GateConfig().max_ece
    )
    assert any("sampling noise of a calibrated model on 300 rows" in line for line in above.checks)

    big = rng.beta(1.2, 3.0, size=20_000)
    y = (rng.uniform(size=big.size) < big).astype(int)
    inflated = score(y, np.sqrt(big))
    assert inflated["ece_noise"] < GateConfig().max_ece < inflated["ece"]
    assert not evaluate_gate(inflated, GateConfig()).passed
