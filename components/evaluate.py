"""Evaluate: metrics on the test split at a threshold chosen by expected profit.

The threshold is chosen on the validation split's calibrated scores (never on the test rows it
is reported on); the test split then gives every reported number, and the classifier's scores
before calibration (:mod:`components.calibration`) give the ``*_uncalibrated`` ones beside them.
Business inputs: a retention offer costs ``offer_cost``; it saves a would-be churner with
probability ``offer_success_rate``, worth ``customer_value``. Targeting a customer with churn
label y is worth y·rate·value - cost.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass

import joblib
import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
from sklearn.inspection import permutation_importance
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    log_loss,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

from components import calibration, schema, storage
from components.artifacts import RunArtifacts
from components.config import ConfigError
from components.features import model_frame

log = logging.getLogger(__name__)

THRESHOLD_GRID = np.round(np.arange(0.01, 1.0, 0.01), 2)
_IMPORTANCE_ROWS = 5000
_CURVE_POINTS = 200


@dataclass(frozen=True)
class BusinessConfig:
    """Economics of a retention offer, used to pick the decision threshold."""

    offer_cost: float = 50.0
    customer_value: float = 500.0
    offer_success_rate: float = 0.3

    def __post_init__(self):
        if self.offer_cost < 0 or self.customer_value <= 0:
            raise ConfigError("offer_cost must be >= 0 and customer_value > 0")
        if not 0 < self.offer_success_rate <= 1:
            raise ConfigError(f"offer_success_rate must be in (0, 1], got {self.offer_success_rate}")

    @property
    def break_even_probability(self) -> float:
        """Churn probability above which an offer pays off on expectation."""
        return self.offer_cost / (self.offer_success_rate * self.customer_value)


def profit_curve(y: np.ndarray, p: np.ndarray, business: BusinessConfig) -> np.ndarray:
    """Total profit of targeting every row with p ≥ t, for each t in :data:`THRESHOLD_GRID`."""
    gain = y * business.offer_success_rate * business.customer_value - business.offer_cost
    order = np.argsort(-p, kind="stable")
    cum_gain = np.concatenate([[0.0], np.cumsum(gain[order])])
    targeted = np.searchsorted(-p[order], -THRESHOLD_GRID, side="right")  # rows with p >= t
    return cum_gain[targeted]


def max_f1_threshold(y: np.ndarray, p: np.ndarray) -> float:
    precision, recall, thresholds = precision_recall_curve(y, p)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(thresholds[int(np.argmax(f1[:-1]))])


def deciles(y: np.ndarray, p: np.ndarray) -> list[dict]:
    """Lift and cumulative gains by score decile (decile 1 = highest scores)."""
    order = np.argsort(-p, kind="stable")
    base_rate, total_pos = y.mean(), y.sum()
    rows, captured = [], 0
    for i, idx in enumerate(np.array_split(order, 10), start=1):
        captured += y[idx].sum()
        rows.append(
            {
                "decile": i,
                "rows": len(idx),
                "churn_rate": float(y[idx].mean()),
                "lift": float(y[idx].mean() / base_rate),
                "cumulative_gain": float(captured / total_pos),
                "min_score": float(p[idx].min()),
            }
        )
    return rows


def _thin(*arrays: np.ndarray) -> list[list[float]]:
    """Downsample curves to at most _CURVE_POINTS points (KFP UI and report plots)."""
    n = len(arrays[0])
    idx = np.unique(np.linspace(0, n - 1, min(n, _CURVE_POINTS)).round().astype(int))
    return [np.nan_to_num(a[idx], posinf=1.0).astype(float).tolist() for a in arrays]


def evaluate_model(
    model, valid: pd.DataFrame, test: pd.DataFrame, business: BusinessConfig, seed: int = 42
) -> dict:
    """All evaluation numbers and curves for a fitted pipeline (a JSON-able dict)."""
    y_valid, y_test = valid[schema.LABEL_COLUMN].to_numpy(), test[schema.LABEL_COLUMN].to_numpy()
    p_valid = model.predict_proba(model_frame(valid))[:, 1]
    p_test = model.predict_proba(model_frame(test))[:, 1]

    profits_valid = profit_curve(y_valid, p_valid, business)
    threshold = float(THRESHOLD_GRID[int(np.argmax(profits_valid))])
    profits_test = profit_curve(y_test, p_test, business)
    predicted = (p_test >= threshold).astype(int)
    tn, fp, fn, tp = confusion_matrix(y_test, predicted, labels=[0, 1]).ravel()

    fpr, tpr, roc_thr = roc_curve(y_test, p_test)
    precision, recall, _ = precision_recall_curve(y_test, p_test)
    u_test = calibration.uncalibrated_proba(model, model_frame(test))
    reliability = {}
    for name, scores in (("calibrated", p_test), ("uncalibrated", u_test)):
        observed, mean_score = calibration_curve(y_test, scores, n_bins=10, strategy="quantile")
        reliability[name] = {"observed": observed, "predicted": mean_score}
    fitted = calibration.calibration_of(model)

    sample = test.sample(min(len(test), _IMPORTANCE_ROWS), random_state=seed)
    importance = permutation_importance(
        model, model_frame(sample), sample[schema.LABEL_COLUMN], scoring="roc_auc",
        n_repeats=3, random_state=seed, n_jobs=1,
    )  # fmt: skip
    ranked = sorted(
        zip(schema.FEATURE_NAMES, importance.importances_mean, importance.importances_std, strict=True),
        key=lambda item: -item[1],
    )
    at_threshold = int(np.searchsorted(THRESHOLD_GRID, threshold))
    metrics = {
        "roc_auc": float(roc_auc_score(y_test, p_test)),
        "pr_auc": float(average_precision_score(y_test, p_test)),
        "log_loss": float(log_loss(y_test, p_test, labels=[0, 1])),
        "brier": float(brier_score_loss(y_test, p_test)),
        "ece": calibration.expected_calibration_error(y_test, p_test),
        "roc_auc_uncalibrated": float(roc_auc_score(y_test, u_test)),
        "log_loss_uncalibrated": float(log_loss(y_test, u_test, labels=[0, 1])),
        "brier_uncalibrated": float(brier_score_loss(y_test, u_test)),
        "ece_uncalibrated": calibration.expected_calibration_error(y_test, u_test),
        "threshold": threshold,
        "threshold_max_f1": max_f1_threshold(y_valid, p_valid),
        "break_even_probability": business.break_even_probability,
        "precision": float(precision_score(y_test, predicted, zero_division=0)),
        "recall": float(recall_score(y_test, predicted, zero_division=0)),
        "f1": float(f1_score(y_test, predicted, zero_division=0)),
        "accuracy": float(accuracy_score(y_test, predicted)),
        "positive_rate": float(predicted.mean()),
        "expected_profit": float(profits_test[at_threshold]),
        "expected_profit_target_all": float(profit_curve(y_test, p_test * 0 + 1, business)[0]),
        "profit_per_customer": float(profits_test[at_threshold] / len(y_test)),
        "test_rows": len(y_test),
        "test_churn_rate": float(y_test.mean()),
    }
    if schema.TRUTH_COLUMN in test and test[schema.TRUTH_COLUMN].notna().all():
        metrics["oracle_roc_auc"] = float(roc_auc_score(y_test, test[schema.TRUTH_COLUMN]))
        metrics["roc_auc_gap_to_oracle"] = metrics["oracle_roc_auc"] - metrics["roc_auc"]
    fpr_t, tpr_t, thr_t = _thin(fpr, tpr, roc_thr)
    prec_t, rec_t = _thin(precision, recall)
    return {
        **metrics,
        "business": asdict(business),
        "confusion_matrix": {"labels": ["stay", "churn"], "matrix": [[int(tn), int(fp)], [int(fn), int(tp)]]},
        "roc_curve": {"fpr": fpr_t, "tpr": tpr_t, "thresholds": thr_t},
        "pr_curve": {"precision": prec_t, "recall": rec_t},
        "calibration": {  # reliability curves (10 quantile bins) of the test scores after and before
            "method": fitted.method if fitted else "none",
            "ece_bins": calibration.ECE_BINS,
            **{k: v.tolist() for k, v in reliability["calibrated"].items()},
            "uncalibrated": {k: v.tolist() for k, v in reliability["uncalibrated"].items()},
        },
        "profit_curve": {  # per customer, so the two splits' curves are comparable
            "thresholds": THRESHOLD_GRID.tolist(),
            "valid": (profits_valid / len(y_valid)).tolist(),
            "test": (profits_test / len(y_test)).tolist(),
        },
        "deciles": deciles(y_test, p_test),
        "feature_importance": [
            {"feature": name, "roc_auc_drop": float(mean), "std": float(std)} for name, mean, std in ranked
        ],
    }


def evaluate(artifacts: RunArtifacts, business: BusinessConfig) -> dict:
    """Score ``artifacts.model`` on the valid/test splits and write ``artifacts.evaluation``
    (metrics.json); return its content."""
    result = evaluate_model(
        joblib.load(artifacts.model),
        pd.read_parquet(artifacts.valid),
        pd.read_parquet(artifacts.test),
        business,
    )
    with storage.atomic_path(artifacts.evaluation) as tmp:
        tmp.write_text(json.dumps(result, indent=2))
    log.info(
        "evaluate: roc_auc %.4f (uncalibrated %.4f) pr_auc %.4f ece %.4f (uncalibrated %.4f) "
        "threshold %.2f profit %.0f",
        result["roc_auc"], result["roc_auc_uncalibrated"], result["pr_auc"], result["ece"],
        result["ece_uncalibrated"], result["threshold"], result["expected_profit"],
    )  # fmt: skip
    return result


def headline(result: dict) -> dict[str, float]:
    """The scalar metrics of an evaluation (what trackers and gates compare)."""
    return {k: v for k, v in result.items() if isinstance(v, float | int) and not isinstance(v, bool)}
