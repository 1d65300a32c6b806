"""Feature engineering and encoding as scikit-learn transformers.

Everything here runs inside the fitted Pipeline, so the exported ONNX graph holds it too
(converters in :mod:`components.onnx_converters`): serving takes raw Telco columns. The
arithmetic runs in float32, the precision ONNX Runtime uses, so tree splits see identical
values in both and the parity check holds to ~1e-7.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from components import schema

TENURE_BAND_EDGES = (6.0, 12.0, 24.0, 48.0)  # months; band = number of edges reached
CHARGE_FEATURES = ("avg_monthly_charge", "charge_increase", "tenure_band")


class ChargeFeatures(TransformerMixin, BaseEstimator):
    """Pass the numeric columns through and append charge and tenure features.

    ``avg_monthly_charge`` = TotalCharges / max(tenure, 1); ``charge_increase`` = MonthlyCharges -
    that average (recent price rises drive churn); ``tenure_band`` = how many of
    :data:`TENURE_BAND_EDGES` the tenure has reached.
    """

    def fit(self, X, y=None):
        columns = list(X.columns) if isinstance(X, pd.DataFrame) else list(schema.NUMERIC)
        self.tenure_idx_ = columns.index("tenure")
        self.monthly_idx_ = columns.index("MonthlyCharges")
        self.total_idx_ = columns.index("TotalCharges")
        self.feature_names_in_ = np.asarray(columns, dtype=object)
        self.n_features_in_ = len(columns)
        return self

    def transform(self, X):
        X = np.asarray(X, dtype=np.float32)
        tenure = X[:, [self.tenure_idx_]]
        avg = X[:, [self.total_idx_]] / np.maximum(tenure, np.float32(1.0))
        increase = X[:, [self.monthly_idx_]] - avg
        band = (tenure >= np.asarray(TENURE_BAND_EDGES, dtype=np.float32)).sum(axis=1, keepdims=True)
        return np.hstack([X, avg, increase, band.astype(np.float32)])

    def get_feature_names_out(self, input_features=None):
        return np.asarray([*self.feature_names_in_, *CHARGE_FEATURES], dtype=object)


class ServiceCount(TransformerMixin, BaseEstimator):
    """Number of the customer's service columns that say "Yes"."""

    def fit(self, X, y=None):
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        return (np.asarray(X, dtype=object) == "Yes").sum(axis=1, keepdims=True).astype(np.float32)

    def get_feature_names_out(self, input_features=None):
        return np.asarray(["n_services"], dtype=object)


def preprocessor(scale_numeric: bool) -> ColumnTransformer:
    """Raw schema columns → model matrix. Categories come from the schema, not from the data,
    so every model version encodes the same way and unknown values are ignored (all-zero)."""
    numeric = [("charges", ChargeFeatures())]
    if scale_numeric:
        numeric.append(("scale", StandardScaler()))
    encoder = OneHotEncoder(
        categories=[list(schema.BY_NAME[c].categories) for c in schema.CATEGORICAL],
        handle_unknown="ignore",
        sparse_output=False,  # sparse zeros would read as "missing" in the XGBoost ONNX graph
        dtype=np.float32,
    )
    return ColumnTransformer(
        [
            ("numeric", Pipeline(numeric), list(schema.NUMERIC)),
            ("services", ServiceCount(), list(schema.SERVICE_COLUMNS)),
            ("categorical", encoder, list(schema.CATEGORICAL)),
        ],
        verbose_feature_names_out=False,
    )


def model_frame(data: pd.DataFrame) -> pd.DataFrame:
    """The model's input: the schema's feature columns in order, numerics as float."""
    frame = data[list(schema.FEATURE_NAMES)].copy()
    frame[list(schema.NUMERIC)] = frame[list(schema.NUMERIC)].astype(np.float32)
    return frame
