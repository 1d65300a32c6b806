import json

import numpy as np
import pandas as pd
import pytest

from components.evaluate import THRESHOLD_GRID, BusinessConfig, deciles, profit_curve


def test_profit_curve_matches_a_direct_count():
    rng = np.random.default_rng(0)
    p = rng.random(500)
    y = (rng.random(500) < p).astype(int)
    business = BusinessConfig(offer_cost=10, customer_value=100, offer_success_rate=0.5)
    curve = profit_curve(y, p, business)
    for i in (0, 17, 50, 98):
        t = THRESHOLD_GRID[i]
        targeted = p >= t
        expected = (y[targeted] * 0.5 * 100 - 10).sum()
        assert curve[i] == pytest.approx(expected)


def test_deciles_cover_every_row_and_gain_reaches_one():
    rng = np.random.default_rng(1)
    p = rng.random(1000)
    y = (rng.random(1000) < p).astype(int)
    table = deciles(y, p)
    assert sum(r["rows"] for r in table) == 1000
    assert table[-1]["cumulative_gain"] == pytest.approx(1.0)
    assert table[0]["lift"] > 1.5 > table[-1]["lift"]


def test_business_config_is_validated():
    with pytest.raises(ValueError, match="offer_success_rate"):
        BusinessConfig(offer_success_rate=0)
    assert (
        BusinessConfig(offer_cost=50, customer_value=500, offer_success_rate=0.2).break_even_probability
        == 0.5
    )


def test_evaluation_artifacts_of_a_trained_model(trained_run):
    result = json.loads(trained_run.artifacts.evaluation.read_text())
    test = pd.read_parquet(trained_run.artifacts.test)
    assert 0.75 < result["roc_auc"] <= result["oracle_roc_auc"] + 0.03
    assert result["test_rows"] == len(test)
    cm = np.array(result["confusion_matrix"]["matrix"])
    assert cm.sum() == len(test) and cm[1].sum() == test["Churn"].sum()
    # The threshold is the validation split's profit maximum, on the grid.
    valid_curve = result["profit_curve"]["valid"]
    assert result["threshold"] == THRESHOLD_GRID[int(np.argmax(valid_curve))]
    assert {r["feature"] for r in result["feature_importance"]} >= {"Contract", "tenure"}
    html = trained_run.artifacts.report.read_text()
    assert html.count("data:image/png;base64,") == 6
    for title in ("ROC", "Precision-recall", "Calibration", "gains", "profit", "importance"):
        assert title in html
