"""The retraining decision and the incident key (pure functions; the claim is test_retrain_claims)."""

from __future__ import annotations

import pytest

from components.config import ConfigError
from components.params import PipelineParams
from components.retrain import (
    CONCEPT,
    DRIFT,
    PERFORMANCE,
    MonitorSignals,
    RetrainPolicy,
    decide,
    incident_key,
    retrain_params,
)

HOUR = 3600.0


def signals(**changes) -> MonitorSignals:
    base = {
        "registered_model": "churn-classifier", "model_version": "3", "window_start": "2026-12-01T00:00:00Z",
        "window_end": "2026-12-01T12:00:00Z", "rows": 50_000, "enough_data": True,
    }  # fmt: skip
    return MonitorSignals(**{**base, **changes})


def test_a_quiet_window_decides_nothing():
    decision = decide(signals(estimated_auc=0.84, realised_auc=0.83), RetrainPolicy())
    assert (decision.retrain, decision.kind, decision.reason) == (False, None, "no retraining needed")


def test_too_little_data_decides_nothing_even_with_alerts():
    decision = decide(
        signals(enough_data=False, rows=120, alerts=("psi MonthlyCharges 0.4",)), RetrainPolicy()
    )
    assert not decision.retrain and "not enough data in the window (120 rows)" in decision.reason


@pytest.mark.parametrize(
    ("given", "kind", "says"),
    [
        ({"estimated_auc": 0.66}, PERFORMANCE, "estimated ROC AUC 0.6600 < 0.7000"),
        ({"realised_auc": 0.69, "estimated_auc": 0.71}, PERFORMANCE, "realised ROC AUC 0.6900 < 0.7000"),
        ({"realised_auc": 0.74, "estimated_auc": 0.83}, CONCEPT, "gap -0.0900 beyond 0.0500"),
        ({"alerts": ("psi MonthlyCharges 0.41 >= 0.25",)}, DRIFT, "1 drift alert(s): psi MonthlyCharges"),
    ],
)
def test_each_rule_fires_and_names_its_reason(given, kind, says):
    decision = decide(signals(**given), RetrainPolicy())
    assert decision.retrain and decision.kind == kind and says in decision.reason


def test_the_first_kind_names_the_incident_and_every_reason_is_kept():
    decision = decide(
        signals(estimated_auc=0.6, realised_auc=0.75, alerts=("js Contract 0.2",)), RetrainPolicy()
    )
    assert decision.kind == PERFORMANCE
    assert [r.split()[0] for r in decision.reasons] == ["estimated", "realised", "1"]
    assert "concept drift" in decision.reasons[1]


def test_drift_alone_can_be_left_to_the_schedule():
    assert not decide(signals(alerts=("psi tenure 0.3",)), RetrainPolicy(on_drift=False)).retrain


def test_the_key_is_stable_within_a_cooldown_bucket_and_differs_across_what_matters():
    key = incident_key(signals(window_end="2026-12-01T01:00:00Z"), DRIFT, 24 * HOUR)
    assert key == incident_key(signals(window_end="2026-12-01T23:59:00+00:00"), DRIFT, 24 * HOUR)
    assert key != incident_key(signals(window_end="2026-12-02T00:00:01Z"), DRIFT, 24 * HOUR)
    assert key != incident_key(
        signals(window_end="2026-12-01T01:00:00Z", model_version="4"), DRIFT, 24 * HOUR
    )
    assert key != incident_key(signals(window_end="2026-12-01T01:00:00Z"), CONCEPT, 24 * HOUR)
    assert len(key) == 32


def test_bad_policy_and_window_values_are_named():
    with pytest.raises(ConfigError, match=r"min_auc must be between 0 and 1, got 1\.5"):
        RetrainPolicy(min_auc=1.5)
    with pytest.raises(ConfigError, match="cooldown_s must be a positive"):
        RetrainPolicy(cooldown_s=0)
    with pytest.raises(ConfigError, match="window_end must be an ISO-8601 time, got 'yesterday'"):
        incident_key(signals(window_end="yesterday"), DRIFT, HOUR)


def test_retrain_params_need_labelled_data_of_the_monitored_lineage():
    base = PipelineParams(search_budget=2)
    assert retrain_params(base, "s3://b/fresh.parquet", signals()).data_uri == "s3://b/fresh.parquet"
    assert retrain_params(base, "s3://b/fresh.parquet", signals()).search_budget == 2
    with pytest.raises(ConfigError, match="no fresh labelled data to retrain on: set CHURN_RETRAIN_DATA_URI"):
        retrain_params(base, "", signals())
    with pytest.raises(ConfigError, match="would register under 'churn-classifier', but the monitored model"):
        retrain_params(base, "fresh.csv", signals(registered_model="churn-classifier-synthetic"))
