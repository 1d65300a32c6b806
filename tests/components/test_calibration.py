"""Calibration: the maps, their choice on validation, the graph that applies them, and what a
trained run reports about them."""

import json
from dataclasses import replace

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from components import bundle, calibration, schema
from components.bundle import METADATA_FILE, MODEL_FILE, BundleMetadata
from components.calibration import (
    CalibratedClassifier,
    Calibration,
    choose,
    expected_calibration_error,
    fit_isotonic,
    fit_sigmoid,
)
from components.evaluate import THRESHOLD_GRID, BusinessConfig, evaluate_model, profit_curve
from components.export import onnx_feed, parity, session, to_onnx
from components.features import model_frame
from components.train import TrainConfig, fit


def _ece_by_loop(y, p, n_bins):
    """An independent ECE: one pass per bin, edges [k/n, (k+1)/n), the last one closed."""
    total = 0.0
    for k in range(n_bins):
        lo, hi = k / n_bins, (k + 1) / n_bins
        inside = (p >= lo) & ((p < hi) if k < n_bins - 1 else (p <= hi))
        if inside.any():
            total += inside.sum() / len(p) * abs(y[inside].mean() - p[inside].mean())
    return total


def _bernoulli(n, seed, shift=0.0):
    """Labels drawn from true probabilities, and scores whose log-odds are shifted by ``shift``
    (what a reweighting by e**shift does to a calibrated model)."""
    rng = np.random.default_rng(seed)
    truth = rng.beta(1.2, 3.0, size=n)
    y = (rng.uniform(size=n) < truth).astype(int)
    return y, 1.0 / (1.0 + np.exp(-(calibration.logit(truth) + shift)))


def test_ece_matches_an_independent_computation_and_known_values():
    y, p = _bernoulli(5000, seed=1, shift=1.0)
    for bins in (10, 15):
        assert expected_calibration_error(y, p, bins) == pytest.approx(_ece_by_loop(y, p, bins), abs=1e-12)
    assert expected_calibration_error(np.array([0, 0, 1, 1]), np.array([0.0, 1.0, 0.0, 1.0])) == 0.5
    assert expected_calibration_error(np.array([0, 1]), np.array([1.0, 1.0])) == 0.5  # p = 1: last bin
    y_true, _ = _bernoulli(20_000, seed=2)
    assert expected_calibration_error(y_true, _bernoulli(20_000, seed=2)[1]) < 0.015  # the truth itself
    with pytest.raises(ValueError, match="as many scores as labels"):
        expected_calibration_error(np.array([1]), np.array([0.1, 0.2]))


def test_sigmoid_undoes_a_log_odds_shift():
    y, inflated = _bernoulli(20_000, seed=3, shift=np.log(3.0))  # scale_pos_weight 3
    fitted = fit_sigmoid(inflated, y)
    assert fitted.params["slope"] == pytest.approx(1.0, abs=0.06)
    assert fitted.params["intercept"] == pytest.approx(-np.log(3.0), abs=0.06)
    assert (
        expected_calibration_error(y, fitted.apply(inflated))
        < 0.02
        < 0.1
        < expected_calibration_error(y, inflated)
    )


def test_isotonic_is_a_rising_piecewise_linear_map_that_calibrates():
    y, inflated = _bernoulli(20_000, seed=4, shift=1.0)
    fitted = fit_isotonic(inflated, y)
    x, values = np.array(fitted.params["x"]), np.array(fitted.params["y"])
    assert len(x) >= 5 and np.all(np.diff(x) > 0) and np.all(np.diff(values) > 0)
    grid = np.linspace(0, 1, 1001)
    mapped = fitted.apply(grid)
    assert np.all(np.diff(mapped) >= 0) and mapped[0] == values[0] and mapped[-1] == values[-1]
    # between the block centres it rises strictly: the ranking of scores there is kept
    assert np.all(np.diff(fitted.apply(np.linspace(x[0], x[-1], 500))) > 0)
    y_new, s_new = _bernoulli(20_000, seed=5, shift=1.0)
    assert (
        expected_calibration_error(y_new, fitted.apply(s_new))
        < 0.02
        < expected_calibration_error(y_new, s_new)
    )
    constant = fit_isotonic(np.full(10, 0.3), np.array([0, 1] * 5))
    assert constant.apply(np.array([0.0, 0.3, 1.0])).tolist() == [0.5, 0.5, 0.5]


def test_choice_is_made_on_validation_by_log_loss_and_recorded():
    y_fit, s_fit = _bernoulli(8000, seed=6, shift=1.0)
    y_valid, s_valid = _bernoulli(4000, seed=7, shift=1.0)
    chosen = choose(s_fit, y_fit, s_valid, y_valid, fitted_on="test rows")
    table = chosen.selection["validation"]
    assert set(table) == {"uncalibrated", "sigmoid", "isotonic"}
    assert chosen.method == min(("sigmoid", "isotonic"), key=lambda m: table[m]["log_loss"])
    assert table[chosen.method]["log_loss"] < table["uncalibrated"]["log_loss"]
    assert table[chosen.method]["ece"] < table["uncalibrated"]["ece"]
    record = chosen.to_dict()
    assert record["fitted_on"] == "test rows" and record["ece_bins"] == calibration.ECE_BINS
    assert json.loads(json.dumps(record)) == record  # goes into metadata.json as it is
    assert choose(s_fit, y_fit, s_valid, y_valid, fitted_on="test rows") == chosen  # deterministic
    # a distortion only isotonic can follow: the choice follows the validation score
    bent = s_fit**3
    assert choose(bent, y_fit, s_valid**3, y_valid, fitted_on="x").method == "isotonic"


def test_calibration_rejects_a_bad_map():
    with pytest.raises(ValueError, match="method must be one of"):
        Calibration("beta", {})
    with pytest.raises(ValueError, match="increasing knots"):
        Calibration("isotonic", {"x": [0.2, 0.1], "y": [0.1, 0.2]})


@pytest.fixture(scope="module")
def fitted_parts(trained_run):
    model = joblib.load(trained_run.artifacts.model)
    valid = pd.read_parquet(trained_run.artifacts.valid)
    return model, valid, pd.read_parquet(trained_run.artifacts.test)


def test_calibrated_classifier_is_the_pipelines_last_step(fitted_parts):
    model, _, test = fitted_parts
    step = model.named_steps["classifier"]
    assert isinstance(step, CalibratedClassifier) and type(step.estimator).__name__ == "XGBClassifier"
    X = model_frame(test)
    raw = calibration.uncalibrated_proba(model, X)
    calibrated = model.predict_proba(X)
    assert calibrated[:, 1] == pytest.approx(step.calibration.apply(raw), abs=1e-12)
    assert calibrated.sum(axis=1) == pytest.approx(1.0)
    assert (model.predict(X) == (calibrated[:, 1] >= 0.5)).all()
    with pytest.raises(TypeError, match="prefit"):
        clone(step).fit(X, test[schema.LABEL_COLUMN])


@pytest.mark.parametrize("method", calibration.METHODS)
def test_both_maps_run_inside_the_graph_within_parity(fitted_parts, method):
    model, valid, test = fitted_parts
    step = model.named_steps["classifier"]
    raw_valid = calibration.uncalibrated_proba(model, model_frame(valid))
    forced = calibration.FITTERS[method](raw_valid, valid[schema.LABEL_COLUMN].to_numpy())
    pipeline = clone(model)  # unfitted copy of the structure, then the fitted parts put back
    pipeline.steps[:] = [model.steps[0], ("classifier", CalibratedClassifier(step.estimator, forced))]
    graph = to_onnx(pipeline)
    assert parity(pipeline, graph, test) <= 1e-5
    label, probabilities = session(graph).run(["label", "probabilities"], onnx_feed(test))
    assert (label == (probabilities[:, 1] >= 0.5)).all()  # the graph's label is the calibrated cut
    assert np.abs(probabilities[:, 1] - pipeline.predict_proba(model_frame(test))[:, 1]).max() <= 1e-5
    assert to_onnx(pipeline) == graph  # same map, same bytes


def test_a_reweighted_model_is_calibrated_without_losing_ranking(splits):
    """Acceptance on small data: calibration lowers the test ECE of a model whose search chose
    class reweighting, and ROC AUC drops by at most 0.002."""
    train, valid, test = splits
    model, summary = fit(train, TrainConfig(search_budget=2, seed=2), valid=valid)
    assert summary["best_params"]["scale_pos_weight"] > 1.5  # the case calibration is for
    metrics = evaluate_model(model, valid, test, BusinessConfig())
    assert metrics["ece"] < metrics["ece_uncalibrated"] / 2
    assert metrics["roc_auc_uncalibrated"] - metrics["roc_auc"] <= 0.002
    assert metrics["log_loss"] < metrics["log_loss_uncalibrated"]


def test_a_trained_run_reports_both_sides_of_its_calibration(trained_run, fitted_parts):
    metrics = json.loads(trained_run.artifacts.evaluation.read_text())
    assert metrics["ece"] < metrics["ece_uncalibrated"]
    assert metrics["roc_auc_uncalibrated"] - metrics["roc_auc"] <= 0.002
    assert metrics["calibration"]["method"] in calibration.METHODS
    assert len(metrics["calibration"]["uncalibrated"]["predicted"]) > 0
    # the threshold is the profit optimum of the calibrated validation scores
    model, valid, _ = fitted_parts
    y_valid = valid[schema.LABEL_COLUMN].to_numpy()
    calibrated = model.predict_proba(model_frame(valid))[:, 1]
    best = THRESHOLD_GRID[int(np.argmax(profit_curve(y_valid, calibrated, BusinessConfig())))]
    assert metrics["threshold"] == best


def test_bundle_and_report_record_the_calibration(trained_run, fitted_parts):
    meta = bundle.verify(trained_run.artifacts.bundle)
    model, _, _ = fitted_parts
    fitted = calibration.calibration_of(model)
    assert meta.calibration == fitted.to_dict() and meta.calibration_method == fitted.method
    assert set(meta.calibration["validation"]) == {"uncalibrated", "sigmoid", "isotonic"}
    assert "out-of-fold" in meta.calibration["fitted_on"]
    assert meta.metrics["ece"] < meta.metrics["ece_uncalibrated"]
    page = trained_run.artifacts.report.read_text()
    assert "ECE on 15 equal-width bins" in page and "ece_uncalibrated" in page


def test_bundles_from_before_calibration_stay_readable(trained_run, tmp_path):
    raw = json.loads((trained_run.artifacts.bundle / METADATA_FILE).read_text())
    del raw["calibration"]
    old = BundleMetadata.from_dict(raw)
    assert old.calibration is None and old.calibration_method == "none"
    with pytest.raises(bundle.BundleError, match="calibration must be an object"):
        BundleMetadata.from_dict({**raw, "calibration": "sigmoid"})
    copy = tmp_path / "old"
    copy.mkdir()
    (copy / MODEL_FILE).write_bytes((trained_run.artifacts.bundle / MODEL_FILE).read_bytes())
    bundle.write_metadata(copy, replace(old))
    assert bundle.verify(copy).calibration is None
