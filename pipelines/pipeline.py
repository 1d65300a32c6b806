"""The churn training pipeline: ingest → train → evaluate → export → register → deploy.

:func:`build_pipeline` makes it for one environment: every task gets that environment's CPU and
memory requests and limits and node pool (pipelines/resources.py), and the platform
configuration from the ``churn-platform`` ConfigMap as environment variables (kfp-kubernetes).
kfp.local ignores both; it keeps the tasks' plain environment variables.
"""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Model

from components.kfp_components import (
    evaluate_op,
    export_op,
    ingest_op,
    register_op,
    search_in_train_op,
    search_plan_op,
    search_results_op,
    search_shard_op,
    train_op,
)
from components.kfp_deploy import BAKE_MINUTES, CANARY_STEPS, TIMEOUT_MINUTES, deploy_op
from components.params import PipelineParams
from pipelines.resources import for_environment, on_the_platform

PIPELINE_NAME = "churn-training"
SEARCH_PARALLELISM = 4  # search shard tasks at once (kfp.local runs at most 2 anyway)
_D = PipelineParams()


class PipelineOutputs(NamedTuple):
    """What a run hands back to its caller (kfp.local runs expose only these)."""

    evaluation: Artifact
    report: HTML
    bundle: Model
    quarantine: Dataset
    profile: Artifact
    registration: Artifact
    deployment: Artifact


def build_pipeline(environment: str):
    """The pipeline for ``environment`` (dev, staging, prod): a KFP pipeline function."""
    resources = for_environment(environment)

    @dsl.pipeline(
        name=PIPELINE_NAME, description="Train, evaluate and export a customer-churn model to ONNX."
    )
    def churn_pipeline(
        data_uri: str = _D.data_uri,
        rows: int = _D.rows,
        seed: int = _D.seed,
        model_type: str = _D.model_type,
        search_budget: int = _D.search_budget,
        cv_folds: int = _D.cv_folds,
        search_shards: int = _D.search_shards,
        max_bad_share: float = _D.max_bad_share,
        offer_cost: float = _D.offer_cost,
        customer_value: float = _D.customer_value,
        offer_success_rate: float = _D.offer_success_rate,
        min_roc_auc: float = _D.min_roc_auc,
        min_pr_auc: float = _D.min_pr_auc,
        max_regression: float = _D.max_regression,
        min_disjoint_rows: int = _D.min_disjoint_rows,
        max_ece: float = _D.max_ece,
        promote: bool = _D.promote,
    ) -> PipelineOutputs:
        ingest = ingest_op(data_uri=data_uri, rows=rows, seed=seed, max_bad_share=max_bad_share)
        on_the_platform(ingest, "ingest", resources)
        searched = _search(
            resources, ingest.outputs["train"], model_type, search_budget, cv_folds, seed, search_shards
        )
        train = train_op(
            train=ingest.outputs["train"],
            valid=ingest.outputs["valid"],
            model_type=model_type,
            search_budget=search_budget,
            cv_folds=cv_folds,
            seed=seed,
            searched=searched,
        )
        on_the_platform(train, "train", resources)
        evaluate = evaluate_op(
            model=train.outputs["model"],
            valid=ingest.outputs["valid"],
            test=ingest.outputs["test"],
            data_hash=ingest.outputs["data_hash"],
            offer_cost=offer_cost,
            customer_value=customer_value,
            offer_success_rate=offer_success_rate,
        )
        on_the_platform(evaluate, "evaluate", resources)
        export = export_op(
            model=train.outputs["model"],
            test=ingest.outputs["test"],
            evaluation=evaluate.outputs["evaluation"],
            data_hash=ingest.outputs["data_hash"],
            model_type=model_type,
        )
        on_the_platform(export, "export", resources)
        register = register_op(
            bundle=export.outputs["bundle"],
            model=train.outputs["model"],
            evaluation=evaluate.outputs["evaluation"],
            report=evaluate.outputs["report"],
            profile=ingest.outputs["profile"],
            train=ingest.outputs["train"],
            valid=ingest.outputs["valid"],
            test=ingest.outputs["test"],
            search=train.outputs["search"],
            data_hash=ingest.outputs["data_hash"],
            source_uri=ingest.outputs["source_uri"],
            offer_cost=offer_cost,
            customer_value=customer_value,
            offer_success_rate=offer_success_rate,
            min_roc_auc=min_roc_auc,
            min_pr_auc=min_pr_auc,
            max_regression=max_regression,
            min_disjoint_rows=min_disjoint_rows,
            max_ece=max_ece,
            promote=promote,
            pipeline_run_id=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
            kfp_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
        )
        on_the_platform(register, "register", resources)
        # In a cluster: the KServe canary rollout of the registered version; under kfp.local a report.
        deploy = deploy_op(
            registration=register.outputs["registration"], canary_steps=CANARY_STEPS,
            bake_minutes=BAKE_MINUTES, timeout_minutes=TIMEOUT_MINUTES,
        )  # fmt: skip
        on_the_platform(deploy, "deploy", resources)
        return PipelineOutputs(
            evaluation=evaluate.outputs["evaluation"],
            report=evaluate.outputs["report"],
            bundle=export.outputs["bundle"],
            quarantine=ingest.outputs["quarantine"],
            profile=ingest.outputs["profile"],
            registration=register.outputs["registration"],
            deployment=deploy.outputs["deployment"],
        )

    return churn_pipeline


def _search(resources, train, model_type, search_budget, cv_folds, seed, search_shards):
    """The search's results for ``train_op``: with ``search_shards > 1`` the candidates fanned out
    over ``dsl.ParallelFor`` tasks and collected (one list, every candidate once); else an empty
    list, so ``train_op`` searches itself. Results are identical either way (components/search.py).

    A runtime branch on a parameter; only parameters cross it (``dsl.OneOf``): kfp.local cannot
    pick one of two branches' artifacts. ``parallelism`` is fixed at compile time (a KFP rule).
    """
    with dsl.If(search_shards > 1, name="search-fanned-out"):
        plan = search_plan_op(search_budget=search_budget, search_shards=search_shards)
        on_the_platform(plan, "search-plan", resources)
        with dsl.ParallelFor(plan.output, parallelism=SEARCH_PARALLELISM) as shard:
            scored = search_shard_op(
                train=train, model_type=model_type, search_budget=search_budget, cv_folds=cv_folds,
                seed=seed, shard=shard,
            )  # fmt: skip
            on_the_platform(scored, "search-shard", resources)
        collected = search_results_op(shards=dsl.Collected(scored.output), search_budget=search_budget)
        on_the_platform(collected, "search-results", resources)
    with dsl.Else(name="search-in-train"):
        in_train = search_in_train_op()
        on_the_platform(in_train, "search-results", resources)
    return dsl.OneOf(collected.output, in_train.output)


# What kfp.local runs (`churn run`, benchmarks): resources and Kubernetes settings do not apply there.
churn_pipeline = build_pipeline("dev")
