"""Reason codes: the features that push each customer's churn score up, in readable terms.

The ONNX graph carries no explanations, so reasons come from the fitted scikit-learn Pipeline the
graph was exported from (the run's ``sklearn/model.joblib``, or the sklearn model logged in the
version's MLflow run). Contributions are in log-odds (margin) units of the classifier before
calibration (the calibration map is monotone, so the terms pushing the margin up push the
calibrated probability up too), exact for the two model types that support them:

- XGBoost: the booster's own tree SHAP values (``predict(..., pred_contribs=True)``); a row's
  contributions plus the bias column equal its margin.
- Logistic regression: coefficient x model-matrix value (numerics standardised by the pipeline's
  scaler, one-hot columns 0/1); plus the intercept they equal the margin.

Random forests have no exact per-row contributions here: asking for their reasons is an error.

The model matrix has one-hot and engineered columns (:mod:`components.features`); each is mapped
to one readable *term* and a term's contribution is the sum over its columns: every one-hot
column of ``Contract`` (the active one and the inactive ones) makes "Contract = Month-to-month",
``tenure`` and ``tenure_band`` make "tenure = 2 months", ``charge_increase`` is "charges up 30% vs
average" (monthly charge against the customer's average monthly bill so far).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from components import schema
from components.calibration import base_classifier
from components.errors import ChurnError
from components.features import model_frame

TOP_K = 3
# Engineered model columns and the term each belongs to (raw numeric columns are their own term).
_ENGINEERED_TERMS = {
    "tenure_band": "tenure",
    "avg_monthly_charge": "avg_monthly_charge",
    "charge_increase": "charge_increase",
    "n_services": "n_services",
}
TERMS: tuple[str, ...] = (*schema.FEATURE_NAMES, "avg_monthly_charge", "charge_increase", "n_services")


class ReasonError(ChurnError, ValueError):
    """Reason codes cannot be computed for this model; the message says why."""


def reason_columns(k: int = TOP_K) -> list[str]:
    """Output column names: ``reason_1``, ``reason_1_contribution``, ... ``reason_k_contribution``."""
    return [name for i in range(1, k + 1) for name in (f"reason_{i}", f"reason_{i}_contribution")]


def column_terms(model_columns) -> list[str]:
    """The term of each model-matrix column (one-hot ``Contract_One year`` -> ``Contract``)."""
    one_hot = {f"{c}_{v}": c for c in schema.CATEGORICAL for v in schema.BY_NAME[c].categories}
    terms = []
    for column in model_columns:
        term = one_hot.get(column) or _ENGINEERED_TERMS.get(column) or (column if column in TERMS else None)
        if term is None:
            raise ReasonError(f"model column {column!r} maps to no reason term")
        terms.append(term)
    return terms


def _parts(pipeline: Pipeline):
    """The features step and the classifier (unwrapped from its calibration: reasons explain the
    margin, and calibration is a monotone map applied after it)."""
    try:
        return pipeline.named_steps["features"], base_classifier(pipeline.named_steps["classifier"])
    except (AttributeError, KeyError) as exc:
        raise ReasonError(
            "reason codes need the training Pipeline with 'features' and 'classifier' steps"
        ) from exc


def contributions(pipeline: Pipeline, data: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``(per-column contributions (N, F), base value (N,), model column names)`` in margin units."""
    features, classifier = _parts(pipeline)
    X = np.asarray(features.transform(model_frame(data)), dtype=np.float32)
    names = [str(n) for n in features.get_feature_names_out()]
    kind = type(classifier).__name__
    if kind == "XGBClassifier":
        import xgboost

        contribs = classifier.get_booster().predict(xgboost.DMatrix(X), pred_contribs=True)
        return contribs[:, :-1].astype(np.float64), contribs[:, -1].astype(np.float64), names
    if kind == "LogisticRegression":
        coef = classifier.coef_[0].astype(np.float64)
        return X.astype(np.float64) * coef, np.full(len(X), float(classifier.intercept_[0])), names
    raise ReasonError(f"reason codes are exact for XGBoost and logistic regression only, not {kind}")


def margin(pipeline: Pipeline, data: pd.DataFrame) -> np.ndarray:
    """The classifier's raw score (log-odds) of each row: what contributions + base add up to."""
    features, classifier = _parts(pipeline)
    X = np.asarray(features.transform(model_frame(data)), dtype=np.float32)
    if type(classifier).__name__ == "XGBClassifier":
        return classifier.predict(X, output_margin=True).astype(np.float64)
    return classifier.decision_function(X).astype(np.float64)


def term_contributions(pipeline: Pipeline, data: pd.DataFrame) -> pd.DataFrame:
    """Each row's contribution per term (:data:`TERMS` columns; they sum to margin - base)."""
    contribs, _, names = contributions(pipeline, data)
    terms = column_terms(names)
    mapping = np.zeros((len(names), len(TERMS)))
    mapping[np.arange(len(names)), [TERMS.index(t) for t in terms]] = 1.0
    return pd.DataFrame(contribs @ mapping, columns=list(TERMS), index=data.index)


def _engineered(pipeline: Pipeline, data: pd.DataFrame) -> pd.DataFrame:
    """The unscaled engineered values, computed by the pipeline's own transformers."""
    features, _ = _parts(pipeline)
    numeric = features.named_transformers_["numeric"].named_steps["charges"]
    charges = numeric.get_feature_names_out()
    values = pd.DataFrame(numeric.transform(model_frame(data)[list(schema.NUMERIC)]), columns=charges)
    services = features.named_transformers_["services"].transform(data[list(schema.SERVICE_COLUMNS)])
    values["n_services"] = services[:, 0]
    return values


def _label(term: str, raw: pd.DataFrame, engineered: pd.DataFrame) -> pd.Series:
    """Readable text of ``term`` for each row of ``raw`` (same row order as ``engineered``)."""
    if term in schema.CATEGORICAL:
        return f"{term} = " + raw[term].astype(str)
    if term == "tenure":
        months = raw[term].astype(int)
        return "tenure = " + months.astype(str) + np.where(months == 1, " month", " months")
    if term == "SeniorCitizen":
        return "SeniorCitizen = " + pd.Series(np.where(raw[term] >= 1, "Yes", "No"), index=raw.index)
    if term in schema.NUMERIC:
        return f"{term} = " + raw[term].map("{:.2f}".format)
    if term == "avg_monthly_charge":
        return "average monthly charge = " + engineered[term].map("{:.2f}".format)
    if term == "n_services":
        return "services = " + engineered[term].astype(int).astype(str)
    average, increase = engineered["avg_monthly_charge"], engineered["charge_increase"]
    share = (increase.abs() / average.where(average > 0)).map("{:.0%}".format)
    direction = pd.Series(np.where(increase >= 0, "up ", "down "), index=raw.index)
    return pd.Series(
        np.where(
            average > 0, "charges " + direction + share + " vs average", "charges with no billing history"
        ),
        index=raw.index,
    )


def top_reasons(pipeline: Pipeline, data: pd.DataFrame, k: int = TOP_K) -> pd.DataFrame:
    """The ``k`` terms pushing each row's score up the most, with their contributions (log-odds).

    Columns :func:`reason_columns`; a row with fewer than ``k`` positive terms has the rest empty
    (None / NaN). Ties between terms go to the earlier term of :data:`TERMS`.
    """
    raw = data.reset_index(drop=True)
    values = term_contributions(pipeline, raw).to_numpy()
    order = np.argsort(-values, axis=1, kind="stable")[:, :k]
    chosen = np.take_along_axis(values, order, axis=1)
    engineered = _engineered(pipeline, raw)
    labels = np.full(order.shape, None, dtype=object)
    for t in np.unique(order):
        where = order == t
        rows = where.any(axis=1)
        text = _label(TERMS[t], raw[rows], engineered[rows]).to_numpy(dtype=object)
        labels[where] = np.repeat(text, where[rows].sum(axis=1))
    positive = chosen > 0
    labels[~positive] = None
    out = {}
    for i in range(k):
        out[f"reason_{i + 1}"] = labels[:, i]
        out[f"reason_{i + 1}_contribution"] = np.where(positive[:, i], chosen[:, i], np.nan)
    return pd.DataFrame(out)
