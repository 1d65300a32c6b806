"""The one test bundle builder: a model trained, evaluated and exported by the real step functions.

A run lands in the standard run-folder layout (:meth:`RunArtifacts.in_dir`), so a test hands
``run.artifacts`` to anything the pipeline would. The training stack is imported inside the
functions: processes that only register (the registry concurrency workers) do not load it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from components.artifacts import Lineage, RunArtifacts
from components.schema import LABEL_COLUMN

FIXTURE_ROWS = 4000
FIXTURE_SEED = 7


@dataclass(frozen=True)
class TrainedRun:
    """A run's artifacts, its lineage and the parameters the register step records."""

    artifacts: RunArtifacts
    lineage: Lineage
    params: dict


def build_run(
    root: Path,
    *,
    rows: int = FIXTURE_ROWS,
    seed: int = FIXTURE_SEED,
    model_type: str = "xgboost",
    search_budget: int = 2,
    cv_folds: int = 3,
    n_jobs: int = -1,
    shuffle_labels: bool = False,
    test: pd.DataFrame | None = None,
) -> TrainedRun:
    """generate → ingest → train → evaluate → report → export into ``root`` (no registration).

    ``shuffle_labels`` permutes the train split's labels (a model with no signal, to fail a
    gate); ``test`` replaces the test split, so two models are judged on the same rows.
    """
    from components.config import load_settings
    from components.export import export
    from components.ingest import ingest
    from components.params import PipelineParams
    from components.steps import evaluate_step, registration_params
    from components.train import train

    params = PipelineParams(
        rows=rows, seed=seed, model_type=model_type, search_budget=search_budget, cv_folds=cv_folds
    )
    artifacts = RunArtifacts.in_dir(root)
    source_uri = params.source_uri()
    data = ingest(source_uri, artifacts, params.ingest_config(), load_settings())
    if test is not None:
        test.to_parquet(artifacts.test, index=False)
    if shuffle_labels:  # no signal left: the model learns the base rate, give or take noise
        split = pd.read_parquet(artifacts.train)
        split[LABEL_COLUMN] = np.random.default_rng(seed).permutation(split[LABEL_COLUMN].to_numpy())
        split.to_parquet(artifacts.train, index=False)
    train(artifacts, replace(params.train_config(), n_jobs=n_jobs))
    evaluate_step(artifacts, params.business_config(), data["data_hash"])
    export(artifacts, data_hash=data["data_hash"], model_type=model_type)
    return TrainedRun(
        artifacts=artifacts,
        lineage=Lineage(data_hash=data["data_hash"], source_uri=source_uri, pipeline_run_id="test-run"),
        params=registration_params(artifacts, params.business_config(), params.gate_config()),
    )


def register_run(
    run: TrainedRun, settings, *, promote=True, gate=None, run_id="test-run", progress=None, **extra
) -> dict:
    """``register_model`` on a built run, as the pipeline's register step calls it."""
    from components.gate import GateConfig
    from components.registry import register_model

    return register_model(
        run.artifacts,
        replace(run.lineage, pipeline_run_id=run_id),
        params=run.params,
        gate=gate or GateConfig(),
        promote=promote,
        settings=settings,
        progress=progress,
        **extra,
    )
