"""Thin KFP v2 component wrappers: each body moves artifacts in and out of one step function.

Bodies import inside themselves because KFP ships each function's source alone. They run in
the components image (which has this project and kfp installed, hence
``install_kfp_package=False``), or in the current interpreter under ``kfp.local``.
"""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from components.config import load_settings

IMAGE = load_settings().components_image
component = dsl.component(base_image=IMAGE, install_kfp_package=False)


@component
def ingest_op(
    data_uri: str,
    rows: int,
    seed: int,
    max_bad_share: float,
    train: Output[Dataset],
    valid: Output[Dataset],
    test: Output[Dataset],
    quarantine: Output[Dataset],
    profile: Output[Artifact],
) -> NamedTuple("IngestOutputs", data_hash=str, source_uri=str):
    """Read (or, with an empty ``data_uri``, generate) the data; clean, quarantine, split."""
    import logging
    from collections import namedtuple

    from components.config import load_settings
    from components.ingest import ingest
    from components.params import PipelineParams
    from components.steps import task_artifacts

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    params = PipelineParams(data_uri=data_uri, rows=rows, seed=seed, max_bad_share=max_bad_share)
    source = params.source_uri()
    artifacts = task_artifacts(
        train=train.path, valid=valid.path, test=test.path, quarantine=quarantine.path, profile=profile.path
    )
    summary = ingest(source, artifacts, params.ingest_config(), load_settings())
    outputs = namedtuple("IngestOutputs", ["data_hash", "source_uri"])
    return outputs(summary["data_hash"], source)


@component
def train_op(
    train: Input[Dataset],
    valid: Input[Dataset],
    model_type: str,
    search_budget: int,
    cv_folds: int,
    seed: int,
    searched: list,
    model: Output[Model],
    search: Output[Artifact],
):
    """Tune, fit and calibrate (method chosen on ``valid``) the churn Pipeline; a joblib file.
    ``searched``: the fanned-out search's records (:func:`search_results_op`), refit only; empty:
    search here."""
    import logging

    import pandas as pd

    from components.search import from_records
    from components.steps import print_progress, task_artifacts
    from components.train import TrainConfig, search_problem
    from components.train import train as train_step

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = TrainConfig(model_type=model_type, search_budget=search_budget, cv_folds=cv_folds, seed=seed)
    artifacts = task_artifacts(train=train.path, valid=valid.path, model=model.path, search=search.path)
    results = None
    if searched:
        results = from_records(search_problem(pd.read_parquet(train.path), config), searched)
    summary = train_step(artifacts, config, progress=print_progress, searched=results)
    model.metadata.update({"model_type": model_type, "cv_roc_auc": summary["cv_roc_auc"]})


@component
def search_plan_op(search_budget: int, search_shards: int) -> list:
    """The search's candidate numbers split into shards: ``[{"shard", "candidates"}]``."""
    from components.search import plan

    return plan(search_budget, search_shards)


@component
def search_shard_op(
    train: Input[Dataset], model_type: str, search_budget: int, cv_folds: int, seed: int, shard: dict
) -> list:
    """Cross-validate one shard's candidates (a ``dsl.ParallelFor`` iteration): their fold scores."""
    import pandas as pd

    from components.search import score_candidates, to_records
    from components.steps import print_progress
    from components.train import TrainConfig, search_problem

    config = TrainConfig(model_type=model_type, search_budget=search_budget, cv_folds=cv_folds, seed=seed)
    problem = search_problem(pd.read_parquet(train.path), config)
    # Ints inside dict parameters arrive as floats (kfp): make the candidate numbers ints again.
    indices = [int(i) for i in shard["candidates"]]
    return to_records(score_candidates(problem, indices, print_progress))


@component
def search_results_op(shards: list, search_budget: int) -> list:
    """The collected shards' records as one list, checked to hold every candidate exactly once."""
    from components.search import check_records

    return check_records(shards, search_budget)


@component
def search_in_train_op() -> list:
    """The small-budget branch's search results: none, so ``train_op`` searches in its own task."""
    return []


@component
def evaluate_op(
    model: Input[Model],
    valid: Input[Dataset],
    test: Input[Dataset],
    data_hash: str,
    offer_cost: float,
    customer_value: float,
    offer_success_rate: float,
    evaluation: Output[Artifact],
    metrics: Output[Metrics],
    classification: Output[ClassificationMetrics],
    report: Output[HTML],
) -> float:
    """Score the test split, pick the profit-optimal threshold, write metrics and the report."""
    import logging

    from components.evaluate import BusinessConfig, headline
    from components.steps import evaluate_step, task_artifacts

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    artifacts = task_artifacts(
        model=model.path, valid=valid.path, test=test.path, evaluation=evaluation.path, report=report.path
    )
    business = BusinessConfig(offer_cost, customer_value, offer_success_rate)
    result = evaluate_step(artifacts, business, data_hash)
    for name, value in headline(result).items():
        metrics.log_metric(name, value)
    roc = result["roc_curve"]
    classification.log_roc_curve(roc["fpr"], roc["tpr"], roc["thresholds"])
    classification.log_confusion_matrix(
        result["confusion_matrix"]["labels"], result["confusion_matrix"]["matrix"]
    )
    return result["threshold"]


@component
def export_op(
    model: Input[Model],
    test: Input[Dataset],
    evaluation: Input[Artifact],
    data_hash: str,
    model_type: str,
    bundle: Output[Model],
):
    """Export the whole pipeline to ONNX (parity-checked) with its metadata.json."""
    import logging

    from components.export import export
    from components.steps import task_artifacts

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    artifacts = task_artifacts(
        model=model.path, test=test.path, evaluation=evaluation.path, bundle=bundle.path
    )
    meta = export(artifacts, data_hash=data_hash, model_type=model_type)
    bundle.metadata.update({"content_sha256": meta.content_sha256, "threshold": meta.threshold})


@component
def register_op(
    bundle: Input[Model],
    model: Input[Model],
    evaluation: Input[Artifact],
    report: Input[HTML],
    profile: Input[Artifact],
    train: Input[Dataset],
    valid: Input[Dataset],
    test: Input[Dataset],
    search: Input[Artifact],
    data_hash: str,
    source_uri: str,
    offer_cost: float,
    customer_value: float,
    offer_success_rate: float,
    min_roc_auc: float,
    min_pr_auc: float,
    max_regression: float,
    min_disjoint_rows: int,
    max_ece: float,
    promote: bool,
    pipeline_run_id: str,
    kfp_run_id: str,
    registration: Output[Artifact],
) -> str:
    """Track the run in MLflow, register a version, gate it against the champion, move aliases."""
    import logging

    from components.artifacts import Lineage, feature_lineage
    from components.config import load_settings
    from components.evaluate import BusinessConfig
    from components.gate import GateConfig
    from components.steps import print_progress, register_step, registration_params, task_artifacts

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    artifacts = task_artifacts(
        bundle=bundle.path, model=model.path, evaluation=evaluation.path, report=report.path,
        profile=profile.path, train=train.path, valid=valid.path, test=test.path, search=search.path,
        registration=registration.path,
    )  # fmt: skip
    gate = GateConfig(min_roc_auc, min_pr_auc, max_regression, min_disjoint_rows, max_ece)
    business = BusinessConfig(offer_cost, customer_value, offer_success_rate)
    summary = register_step(
        artifacts,
        Lineage(data_hash, source_uri, pipeline_run_id, kfp_run_id or None, feature_lineage(profile.path)),
        params=registration_params(artifacts, business, gate),
        gate=gate, promote=promote, settings=load_settings(), progress=print_progress,
    )  # fmt: skip
    registration.metadata.update({"version": summary["version"], "verdict": summary["gate"]["verdict"]})
    return summary["message"]
