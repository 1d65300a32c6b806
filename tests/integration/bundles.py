"""Trained bundles for the registry tests, built by the project's real steps on synthetic rows.

Stand-in for the pipeline's ``trained_bundle`` fixture with the same attributes, plus knobs the
registry tests need (a deliberately worse model: shuffled labels, a one-candidate search).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from components.gate import score
from components.schema import LABEL_COLUMN


def build_bundle(
    root: Path,
    *,
    rows: int = 3000,
    seed: int = 0,
    shuffle_labels: bool = False,
    test: pd.DataFrame | None = None,
) -> SimpleNamespace:
    """Ingest-clean synthetic rows, fit a small logistic-regression pipeline, export its bundle.

    ``test`` reuses another bundle's test split, so two models are judged on the same rows.
    """
    # Imported here: the concurrency test's child processes import this module for
    # register_bundle only and should not need (or break on) the training stack.
    from components import export, ingest, synthetic, train

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    data = ingest.clean(synthetic.generate(rows, seed=seed)).data
    data_hash = ingest.content_hash(data)
    train_df, _, test_df = ingest.split(data, ingest.IngestConfig(seed=seed))
    if test is not None:
        test_df = test
    if shuffle_labels:  # no signal left: the model learns only the base rate, give or take noise
        train_df = train_df.assign(
            **{LABEL_COLUMN: np.random.default_rng(seed).permutation(train_df[LABEL_COLUMN])}
        )
    model, summary = train.fit(
        train_df, train.TrainConfig(model_type="logreg", search_budget=1, cv_folds=2, n_jobs=1, seed=seed)
    )
    paths = SimpleNamespace(
        root=root,
        bundle_dir=root / "bundle",
        test_path=root / "test.parquet",
        sklearn_model_path=root / "model.joblib",
        # extension-less like KFP artifact files; the registry logs them under fixed names
        metrics_path=root / "evaluation",
        report_path=root / "report",
        profile_path=root / "profile",
        data_hash=data_hash,
        params={"train": summary["config"], "rows": rows, "shuffle_labels": shuffle_labels},
        source_uri="synthetic://test",
    )
    import joblib

    joblib.dump(model, paths.sklearn_model_path)
    test_df.to_parquet(paths.test_path)
    proba = model.predict_proba(test_df)[:, 1]
    metrics = {
        **score(test_df[LABEL_COLUMN].to_numpy(), proba),
        "threshold": 0.5,
        "log_loss": 0.5,
        "brier": 0.2,
    }
    metrics.pop("rows")
    paths.metrics_path.write_text(json.dumps(metrics))
    paths.report_path.write_text(
        f"<html><body><h1>churn report</h1><p>{json.dumps(metrics)}</p></body></html>"
    )
    paths.profile_path.write_text(json.dumps(ingest.profile(data)))
    export.export(
        paths.sklearn_model_path,
        paths.test_path,
        paths.bundle_dir,
        threshold=0.5,
        metrics=metrics,
        data_hash=data_hash,
        model_type="logreg",
    )
    paths.metrics = metrics
    return paths


def register_bundle(
    bundle, settings, *, promote=True, gate=None, run_id="test-run", progress=None, **extra
) -> dict:
    """``register_model`` on a bundle built here or the shared ``trained_bundle``, as the
    pipeline's register step calls it."""
    from components.gate import GateConfig
    from components.registry import register_model

    return register_model(
        bundle_dir=bundle.bundle_dir,
        sklearn_model_path=bundle.sklearn_model_path,
        metrics_path=bundle.metrics_path,
        report_path=bundle.report_path,
        profile_path=bundle.profile_path,
        test_path=bundle.test_path,
        params=bundle.params,
        data_hash=bundle.data_hash,
        source_uri=bundle.source_uri,
        pipeline_run_id=run_id,
        gate=gate or GateConfig(),
        promote=promote,
        settings=settings,
        progress=progress,
        **extra,
    )


# Session fixtures shared by the unit and integration registry tests (imported where used).


@pytest.fixture(scope="session", name="good")
def good_bundle(tmp_path_factory):
    return build_bundle(tmp_path_factory.mktemp("good"), seed=0)


@pytest.fixture(scope="session", name="mediocre")
def mediocre_bundle(tmp_path_factory, good):
    """Decent but below ``good`` on good's test rows (trained on other synthetic rows)."""
    return build_bundle(tmp_path_factory.mktemp("mediocre"), seed=3, test=pd.read_parquet(good.test_path))


@pytest.fixture(scope="session", name="worse")
def worse_bundle(tmp_path_factory, good):
    """Shuffled labels and a one-candidate search: must fail the gate against ``good``."""
    return build_bundle(
        tmp_path_factory.mktemp("worse"), seed=1, shuffle_labels=True, test=pd.read_parquet(good.test_path)
    )
