"""Shared fixtures: one small model trained by the real steps, reused across the suite."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

# Every test run gets its own project data dir: nothing reads or writes the developer's .churn/.
os.environ["CHURN_HOME"] = tempfile.mkdtemp(prefix="churn-test-home-")
atexit.register(shutil.rmtree, os.environ["CHURN_HOME"], ignore_errors=True)

FIXTURE_ROWS = 4000


@dataclass(frozen=True)
class TrainedBundle:
    """Paths of a model trained, evaluated and exported by the real step functions."""

    root: Path
    train_path: Path
    valid_path: Path
    test_path: Path
    profile_path: Path
    quarantine_path: Path
    sklearn_model_path: Path
    metrics_path: Path
    report_path: Path
    bundle_dir: Path
    data_hash: str
    source_uri: str
    params: dict


def train_bundle(
    root: Path, rows: int = FIXTURE_ROWS, seed: int = 7, model_type: str = "xgboost"
) -> TrainedBundle:
    """Run generate → ingest → train → evaluate → report → export into ``root``."""
    from components.config import load_settings
    from components.evaluate import BusinessConfig, evaluate, headline
    from components.export import export
    from components.ingest import IngestConfig, IngestPaths, ingest
    from components.report import write_report
    from components.synthetic import generate, write_table
    from components.train import TrainConfig, train

    root.mkdir(parents=True, exist_ok=True)
    source = write_table(generate(rows, seed=seed), root / "source.parquet")
    paths = IngestPaths(*(root / n for n in ("train.parquet", "valid.parquet", "test.parquet",
                                             "quarantine.csv", "profile.json")))  # fmt: skip
    summary = ingest(str(source), paths, IngestConfig(seed=seed), load_settings())
    model_path = root / "model.joblib"
    config = TrainConfig(model_type, search_budget=2, seed=seed)
    train(paths.train, model_path, root / "search.json", config)
    result = evaluate(model_path, paths.valid, paths.test, root / "metrics.json", BusinessConfig())
    write_report(result, root / "report.html", "test report", {"data_hash": summary["data_hash"]})
    export(
        model_path, paths.test, root / "bundle",
        threshold=result["threshold"], metrics=headline(result), data_hash=summary["data_hash"],
        model_type=model_type,
    )  # fmt: skip
    return TrainedBundle(
        root=root, train_path=paths.train, valid_path=paths.valid, test_path=paths.test,
        profile_path=paths.profile, quarantine_path=paths.quarantine, sklearn_model_path=model_path,
        metrics_path=root / "metrics.json", report_path=root / "report.html", bundle_dir=root / "bundle",
        data_hash=summary["data_hash"], source_uri=str(source), params=asdict(config),
    )  # fmt: skip


@pytest.fixture(scope="session")
def trained_bundle(tmp_path_factory) -> TrainedBundle:
    """An XGBoost churn model on 4,000 synthetic rows, with every artifact the steps write."""
    return train_bundle(tmp_path_factory.mktemp("trained"))
