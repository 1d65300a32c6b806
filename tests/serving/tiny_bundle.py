"""A tiny bundle with the model contract of components/export.py (model.onnx, metadata.json, held-out
rows, the fitted scikit-learn pipeline), for when the pipeline's shared fixture is not available."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from components.schema import FEATURES


def tiny_bundle(root: Path) -> SimpleNamespace:
    """Stand-in for the pipeline's ``trained_bundle`` while it is not available: same contract."""
    import hashlib

    import joblib
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from components.schema import CATEGORICAL, NUMERIC, schema_dict

    rng = np.random.default_rng(7)
    n = 2000
    df = pd.DataFrame(
        {
            f.name: rng.choice(f.categories, n)
            if f.is_categorical
            else rng.integers(int(f.minimum), min(int(f.maximum), 72) + 1, n).astype(float)
            if f.integer
            else rng.uniform(f.minimum, min(f.maximum, 5000), n)
            for f in FEATURES
        }
    )
    logit = -1 + 1.5 * (df.Contract == "Month-to-month") - 0.03 * df.tenure + 0.0004 * df.MonthlyCharges
    label = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    encode = ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), list(CATEGORICAL)),
         ("num", StandardScaler(), list(NUMERIC))]
    )  # fmt: skip
    pipeline = Pipeline([("pre", encode), ("clf", LogisticRegression(max_iter=500))]).fit(df, label)
    types = [
        (f.name, StringTensorType([None, 1]) if f.is_categorical else FloatTensorType([None, 1]))
        for f in FEATURES
    ]
    onx = convert_sklearn(
        pipeline, initial_types=types, options={id(pipeline.steps[-1][1]): {"zipmap": False}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    ).SerializeToString()  # fmt: skip
    bundle_dir = root / "bundle"
    bundle_dir.mkdir(parents=True)
    (bundle_dir / "model.onnx").write_bytes(onx)
    digest = hashlib.sha256(onx).hexdigest()
    (bundle_dir / "metadata.json").write_text(
        json.dumps(
            {
                "model_name": "churn", "model_version": digest[:12], "schema": schema_dict(),
                "inputs": [f.v2_input() for f in FEATURES],
                "outputs": {"probabilities": "probabilities", "positive_column": 1, "label": "label"},
                "threshold": 0.4, "model_type": "logistic_regression", "metrics": {}, "data_hash": "test",
                "onnx_sha256": digest, "library_versions": {}, "created_at": "2026-01-01T00:00:00Z",
            }
        )
    )  # fmt: skip
    test = df.iloc[:500].assign(Churn=label[:500])
    test.to_parquet(root / "test.parquet")
    joblib.dump(pipeline, root / "sklearn.joblib")
    return SimpleNamespace(
        bundle_dir=bundle_dir, test_path=root / "test.parquet", sklearn_model_path=root / "sklearn.joblib"
    )
