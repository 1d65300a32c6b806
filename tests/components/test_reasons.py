"""Reason codes (components.reasons): additivity, the mapping to raw terms, and the known churn process."""

from __future__ import annotations

import joblib
import numpy as np
import pandas as pd
import pytest

from components import schema
from components.ingest import clean
from components.reasons import (
    TERMS,
    ReasonError,
    column_terms,
    contributions,
    margin,
    term_contributions,
    top_reasons,
)
from components.synthetic import generate
from components.train import TrainConfig, fit


@pytest.fixture(scope="module")
def xgboost_model(trained_run):
    return joblib.load(trained_run.artifacts.model)


@pytest.fixture(scope="module")
def logreg_model(splits):
    train, valid, _ = splits
    return fit(train, TrainConfig(model_type="logreg", search_budget=1, cv_folds=2), valid=valid)[0]


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return clean(generate(1500, seed=5)).data


@pytest.mark.parametrize("which", ["xgboost_model", "logreg_model"])
def test_contributions_plus_base_reproduce_the_margin(request, which, rows):
    pipeline = request.getfixturevalue(which)
    contribs, base, _ = contributions(pipeline, rows)
    assert np.abs(contribs.sum(axis=1) + base - margin(pipeline, rows)).max() < 1e-4
    # and the terms only regroup the columns: nothing is lost in the mapping
    assert np.allclose(term_contributions(pipeline, rows).sum(axis=1), contribs.sum(axis=1), atol=1e-9)


def test_one_hot_and_engineered_columns_map_to_raw_terms(xgboost_model):
    names = list(xgboost_model.named_steps["features"].get_feature_names_out())
    terms = dict(zip(names, column_terms(names), strict=True))
    assert {terms[f"Contract_{c}"] for c in schema.BY_NAME["Contract"].categories} == {"Contract"}
    assert terms["tenure_band"] == terms["tenure"] == "tenure"
    assert terms["charge_increase"] == "charge_increase" and terms["n_services"] == "n_services"
    assert set(terms.values()) <= set(TERMS)
    with pytest.raises(ReasonError, match="'mystery_7' maps to no reason term"):
        column_terms([*names, "mystery_7"])


def test_labels_are_readable_raw_values(xgboost_model, rows):
    row = rows.iloc[[0]].copy()
    row[["Contract", "tenure", "MonthlyCharges", "TotalCharges"]] = ["Month-to-month", 4.0, 100.0, 300.0]
    # every term pushing this row up, by asking for as many reasons as there are terms
    reasons = top_reasons(xgboost_model, row, k=len(TERMS))
    texts = [t for t in reasons.iloc[0][[f"reason_{i}" for i in range(1, len(TERMS) + 1)]] if t]
    assert "Contract = Month-to-month" in texts
    assert "tenure = 4 months" in texts
    # average so far 300 / 4 = 75 against 100 today: up a third
    assert "charges up 33% vs average" in texts


def test_month_to_month_short_tenure_customers_have_those_among_their_reasons(xgboost_model):
    """The generator's churn process raises the log-odds for month-to-month and short tenure."""
    data = clean(generate(4000, seed=11)).data
    target = data[(data["Contract"] == "Month-to-month") & (data["tenure"] <= 3)]
    assert len(target) > 50
    reasons = top_reasons(xgboost_model, target)
    listed = reasons[["reason_1", "reason_2", "reason_3"]].astype(str)
    has_contract = listed.apply(lambda r: "Contract = Month-to-month" in set(r), axis=1)
    has_tenure = listed.apply(lambda r: any(t.startswith("tenure = ") for t in r), axis=1)
    assert has_contract.mean() > 0.9 and has_tenure.mean() > 0.9
    assert (reasons["reason_1_contribution"] >= reasons["reason_2_contribution"]).all()


def test_random_forest_has_no_exact_reasons(splits, rows):
    config = TrainConfig(model_type="random_forest", search_budget=1, cv_folds=2, n_jobs=1)
    model = fit(splits[0], config, valid=splits[1])[0]
    with pytest.raises(ReasonError, match="XGBoost and logistic regression only, not RandomForestClassifier"):
        top_reasons(model, rows)
