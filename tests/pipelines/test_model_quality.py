"""Tuned XGBoost on synthetic data gets within 0.02 ROC AUC of the generator's oracle."""

import pytest

from components.evaluate import BusinessConfig, evaluate_model
from components.ingest import IngestConfig, clean, split
from components.synthetic import generate
from components.train import TrainConfig, fit


@pytest.mark.slow
def test_xgboost_is_within_two_points_of_the_oracle_auc():
    train, valid, test = split(clean(generate(20_000, seed=42)).data, IngestConfig(seed=42))
    model, _ = fit(train, TrainConfig(search_budget=4, seed=42), valid=valid)
    result = evaluate_model(model, valid, test, BusinessConfig())
    assert result["oracle_roc_auc"] - result["roc_auc"] <= 0.02, (result["roc_auc"], result["oracle_roc_auc"])
