"""The churn training pipeline: ingest → train → evaluate → export (→ register).

:func:`build_pipeline` makes it for one environment: every task gets that environment's CPU and
memory requests and limits and node pool (pipelines/resources.py), and the platform
configuration from the ``churn-platform`` ConfigMap as environment variables (kfp-kubernetes).
kfp.local ignores both; it keeps the tasks' plain environment variables.
"""

from typing import NamedTuple

from kfp import dsl, kubernetes
from kfp.dsl import HTML, Artifact, Dataset, Model
from kfp.dsl.pipeline_task import PipelineTask

from components.config import PLATFORM_CONFIG_ENV, PLATFORM_CONFIGMAP
from components.kfp_components import evaluate_op, export_op, ingest_op, register_op, train_op
from components.params import PipelineParams
from pipelines.resources import POOL_LABEL, EnvironmentResources, for_environment

PIPELINE_NAME = "churn-training"
# The keys of the churn-platform ConfigMap (manifests/base/pipeline-config.yaml), each the name
# of the environment variable it becomes. None is secret (S3 access is the pod's IRSA role), so
# no Secret is mounted. Optional: a missing key reaches the step, whose settings name it.
PLATFORM_KEYS = ("MLFLOW_TRACKING_URI", "CHURN_MODEL_STORE_URI", "AWS_REGION")
_D = PipelineParams()


class PipelineOutputs(NamedTuple):
    """What a run hands back to its caller (kfp.local runs expose only these)."""

    evaluation: Artifact
    report: HTML
    bundle: Model
    quarantine: Dataset
    profile: Artifact
    registration: Artifact


def _on_the_platform(task: PipelineTask, step: str, resources: EnvironmentResources) -> PipelineTask:
    """Name the task, size it, pin it to its node pool and give it the platform configuration."""
    size = resources.steps[step]
    task.set_display_name(step)
    task.set_cpu_request(size.cpu_request).set_cpu_limit(size.cpu_limit)
    task.set_memory_request(size.memory_request).set_memory_limit(size.memory_limit)
    kubernetes.add_node_selector(task, POOL_LABEL, resources.node_pool)
    kubernetes.use_config_map_as_env(
        task, PLATFORM_CONFIGMAP, {key: key for key in PLATFORM_KEYS}, optional=True
    )
    task.set_env_variable(PLATFORM_CONFIG_ENV, PLATFORM_CONFIGMAP)
    return task


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
        max_bad_share: float = _D.max_bad_share,
        offer_cost: float = _D.offer_cost,
        customer_value: float = _D.customer_value,
        offer_success_rate: float = _D.offer_success_rate,
        min_roc_auc: float = _D.min_roc_auc,
        min_pr_auc: float = _D.min_pr_auc,
        max_regression: float = _D.max_regression,
        min_disjoint_rows: int = _D.min_disjoint_rows,
        promote: bool = _D.promote,
    ) -> PipelineOutputs:
        ingest = ingest_op(data_uri=data_uri, rows=rows, seed=seed, max_bad_share=max_bad_share)
        _on_the_platform(ingest, "ingest", resources)
        train = train_op(
            train=ingest.outputs["train"],
            model_type=model_type,
            search_budget=search_budget,
            cv_folds=cv_folds,
            seed=seed,
        )
        _on_the_platform(train, "train", resources)
        evaluate = evaluate_op(
            model=train.outputs["model"],
            valid=ingest.outputs["valid"],
            test=ingest.outputs["test"],
            data_hash=ingest.outputs["data_hash"],
            offer_cost=offer_cost,
            customer_value=customer_value,
            offer_success_rate=offer_success_rate,
        )
        _on_the_platform(evaluate, "evaluate", resources)
        export = export_op(
            model=train.outputs["model"],
            test=ingest.outputs["test"],
            evaluation=evaluate.outputs["evaluation"],
            data_hash=ingest.outputs["data_hash"],
            model_type=model_type,
        )
        _on_the_platform(export, "export", resources)
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
            promote=promote,
            pipeline_run_id=dsl.PIPELINE_JOB_NAME_PLACEHOLDER,
            kfp_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
        )
        _on_the_platform(register, "register", resources)
        return PipelineOutputs(
            evaluation=evaluate.outputs["evaluation"],
            report=evaluate.outputs["report"],
            bundle=export.outputs["bundle"],
            quarantine=ingest.outputs["quarantine"],
            profile=ingest.outputs["profile"],
            registration=register.outputs["registration"],
        )

    return churn_pipeline


# What kfp.local runs (`churn run`, benchmarks): resources and Kubernetes settings do not apply there.
churn_pipeline = build_pipeline("dev")
