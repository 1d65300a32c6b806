"""Per-environment CPU and memory of each pipeline step, the node pool the steps run on, and
:func:`on_the_platform`, which gives a task all of that plus the platform configuration (every
pipeline's tasks go through it: training and scoring alike).

The one table of it: `churn pipeline compile` (CHURN_ENV) sets these as each task's requests
and limits and pins the tasks to the pool with a nodeSelector on the `churn.io/pool` label that
terraform/modules/eks gives every node group.

Derived from the node groups in terraform/envs/<env>/main.tf. The steps run in the `system`
group (the inference group is kept for the predictors); in every environment that group is a
2 vCPU / 8 GiB type (dev t3.large, staging and prod m6i.large), whose EKS allocatable is about
1930m CPU and 7000 MiB once kubelet's reserve (CPU by cores, 255 MiB + 11 MiB per pod, 100 MiB
eviction) is taken. A step must also leave room for the node's DaemonSets (CNI, kube-proxy, CSI,
node exporter), so a request and a limit stay at or below 1630m CPU and 6 GiB.
tests/infra/test_pipeline_resources.py recomputes all of that from the Terraform and checks it.
"""

from __future__ import annotations

from dataclasses import dataclass

from kfp import kubernetes
from kfp.dsl.pipeline_task import PipelineTask

from components.config import PLATFORM_CONFIG_ENV, PLATFORM_CONFIGMAP, ConfigError

POOL_LABEL = "churn.io/pool"
# The keys of the churn-platform ConfigMap (manifests/base/pipeline-config.yaml), each the name
# of the environment variable it becomes. None is secret (S3 access is the pod's IRSA role), so
# no Secret is mounted. Optional: a missing key reaches the step, whose settings name it.
PLATFORM_KEYS = ("MLFLOW_TRACKING_URI", "CHURN_MODEL_STORE_URI", "AWS_REGION", "CHURN_PROMETHEUS_URL")


@dataclass(frozen=True)
class StepResources:
    """Kubernetes quantities of one step: what the scheduler reserves, and the hard ceiling."""

    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str


@dataclass(frozen=True)
class EnvironmentResources:
    """The node pool the steps run on and each step's resources, by task display name."""

    node_pool: str
    steps: dict[str, StepResources]


_LIGHT = StepResources(cpu_request="250m", cpu_limit="1", memory_request="1Gi", memory_limit="2Gi")

# One 2 vCPU / 8 GiB system node: training (the search and its CV folds) gets most of it.
_ON_A_2_VCPU_8_GIB_NODE = EnvironmentResources(
    node_pool="system",
    steps={
        "ingest": _LIGHT,
        "train": StepResources(cpu_request="1", cpu_limit="1500m", memory_request="3Gi", memory_limit="6Gi"),
        # search_shards > 1: each shard cross-validates its candidates like the train step would.
        "search-plan": _LIGHT,
        "search-shard": StepResources(
            cpu_request="1", cpu_limit="1500m", memory_request="3Gi", memory_limit="6Gi"
        ),
        "search-results": _LIGHT,
        "evaluate": _LIGHT,
        "export": _LIGHT,
        "register": StepResources(
            cpu_request="250m", cpu_limit="500m", memory_request="512Mi", memory_limit="1Gi"
        ),
        # deploy: the rollout driver mostly waits (bake times) between patches and queries.
        "deploy": StepResources(
            cpu_request="100m", cpu_limit="500m", memory_request="512Mi", memory_limit="1Gi"
        ),
        # churn-scoring: one ONNX Runtime process per shard over chunk_rows rows at a time; the
        # rank step holds one score and one index per row.
        "plan": _LIGHT,
        "score-shard": StepResources(
            cpu_request="1", cpu_limit="1", memory_request="2Gi", memory_limit="2Gi"
        ),
        "rank": StepResources(cpu_request="1", cpu_limit="1", memory_request="4Gi", memory_limit="4Gi"),
        # churn-monitoring: the monitor streams the payload log by row group (memory bounded);
        # the decision only reads its JSON and writes one MLflow record.
        "monitor": StepResources(cpu_request="1", cpu_limit="1", memory_request="2Gi", memory_limit="2Gi"),
        "retrain-decision": StepResources(
            cpu_request="250m", cpu_limit="500m", memory_request="512Mi", memory_limit="1Gi"
        ),
    },
)

ENVIRONMENTS: dict[str, EnvironmentResources] = {
    "dev": _ON_A_2_VCPU_8_GIB_NODE,
    "staging": _ON_A_2_VCPU_8_GIB_NODE,
    "prod": _ON_A_2_VCPU_8_GIB_NODE,
}


def for_environment(environment: str) -> EnvironmentResources:
    """The resources of ``environment``; an unknown name is a :class:`ConfigError` naming the choices."""
    try:
        return ENVIRONMENTS[environment]
    except KeyError:
        raise ConfigError(
            f"CHURN_ENV must be one of {', '.join(sorted(ENVIRONMENTS))}, got {environment!r}"
        ) from None


def on_the_platform(task: PipelineTask, step: str, resources: EnvironmentResources) -> PipelineTask:
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
