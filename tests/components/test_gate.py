"""The quality gate: floors, regression tolerance, and a champion that could not be re-scored."""

from __future__ import annotations

import dataclasses

import pytest

from components.gate import GateConfig, GateInputError, evaluate_gate


def test_gate_config_rejects_bad_values_naming_the_field():
    with pytest.raises(GateInputError, match="min_pr_auc"):
        GateConfig(min_pr_auc=1.5)
    with pytest.raises(GateInputError, match="max_regression"):
        GateConfig(max_regression=float("nan"))


def test_gate_floors_and_regression_tolerance():
    gate = GateConfig(min_roc_auc=0.7, min_pr_auc=0.4, max_regression=0.01)
    champion = {"roc_auc": 0.85, "pr_auc": 0.60}
    assert evaluate_gate({"roc_auc": 0.845, "pr_auc": 0.595}, gate, champion, "1").passed
    result = evaluate_gate({"roc_auc": 0.83, "pr_auc": 0.61}, gate, champion, "1")
    assert not result.passed
    assert len(result.reasons) == 1 and "roc_auc" in result.reasons[0] and "champion v1" in result.reasons[0]
    floors = evaluate_gate({"roc_auc": 0.69, "pr_auc": 0.39}, gate)
    assert not floors.passed and len(floors.reasons) == 2


def test_unscorable_champion_is_an_input_and_the_result_is_frozen():
    gate = GateConfig()
    why = "champion v4 could not be re-scored on this test split (gone)"
    result = evaluate_gate(
        {"roc_auc": 0.9, "pr_auc": 0.7}, gate, champion_version="4", champion_unscorable=why
    )
    assert not result.passed and result.reasons == (why,) and result.checks[-1] == why
    assert result.champion_version == "4" and result.champion is None
    assert result.to_dict()["reasons"] == [why] and result.to_dict()["verdict"] == "failed"
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.passed = True  # type: ignore[misc]
    with pytest.raises(GateInputError, match="champion_unscorable"):
        evaluate_gate({"roc_auc": 0.9, "pr_auc": 0.7}, gate, champion_unscorable=why)


def test_a_refused_comparison_is_its_own_verdict():
    gate = GateConfig(min_disjoint_rows=200)
    why = "only 50 rows neither model trained on < minimum 200"
    refused = evaluate_gate(
        {"roc_auc": 0.9, "pr_auc": 0.7}, gate, champion_version="3", comparison_refused=why
    )
    assert refused.verdict == "refused" and not refused.passed and refused.reasons == (why,)
    assert refused.to_dict()["verdict"] == "refused"
    # a candidate below the floors fails, whether or not the comparison was possible
    low = evaluate_gate({"roc_auc": 0.6, "pr_auc": 0.7}, gate, champion_version="3", comparison_refused=why)
    assert low.verdict == "failed" and why in low.reasons
    with pytest.raises(GateInputError, match="min_disjoint_rows"):
        GateConfig(min_disjoint_rows=0)
    with pytest.raises(GateInputError, match="min_disjoint_rows"):
        GateConfig(min_disjoint_rows=2.5)
