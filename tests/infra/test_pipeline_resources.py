"""Every step of the compiled pipeline can be scheduled in every environment: its requests and
limits fit one node of the node group it is pinned to, as that group is declared in
terraform/envs/<env>/main.tf, with EKS's allocatable capacity (kubelet's reserve taken off)
and room left for the node's DaemonSets.

No cluster runs here: the node sizes are AWS's published figures for each instance type and the
reserve is the EKS AMI's formula (the numbers below); a type not in the table fails the test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from components.config import ConfigError
from pipelines.monitoring_pipeline import compile_monitoring_pipeline
from pipelines.remote import compile_pipeline
from pipelines.resources import ENVIRONMENTS, POOL_LABEL, for_environment
from pipelines.scoring_pipeline import compile_scoring_pipeline
from tests.infra.tools import REPO


@dataclass(frozen=True)
class InstanceType:
    vcpus: int
    memory_gib: int
    max_pods: int  # ENIs x (IPv4 addresses per ENI - 1) + 2, the VPC CNI's limit without prefix delegation


INSTANCE_TYPES = {
    "t3.large": InstanceType(2, 8, 35),
    "m6i.large": InstanceType(2, 8, 29),
    "m6i.xlarge": InstanceType(4, 16, 58),
    "c6i.xlarge": InstanceType(4, 8, 58),
    "c6i.2xlarge": InstanceType(8, 16, 58),
}
# Memory the kubelet sees of a nominal GiB (firmware and kernel keep the rest): an m5.large's
# 8 GiB shows as 7934376Ki of capacity.
VISIBLE_MEMORY = 7934376 / 1024 / (8 * 1024)
EVICTION_MIB = 100
# Left for the DaemonSets on every node (aws-node, kube-proxy, EBS CSI node, node exporter...).
DAEMONSETS_MILLICPU, DAEMONSETS_MIB = 300, 512

NODE_GROUP = re.compile(r"^\s*(\w+)\s*=\s*\{\s*instance_types\s*=\s*\[([^\]]*)\]", re.M)


def allocatable(instance: InstanceType) -> tuple[float, float]:
    """(millicpu, MiB) a node of this type offers pods, by the EKS AMI's kube-reserved formula."""
    shares = [0.06, 0.01, 0.005, 0.005] + [0.0025] * max(0, instance.vcpus - 4)
    reserved_millicpu = 1000 * sum(shares[: instance.vcpus])
    reserved_mib = 255 + 11 * instance.max_pods + EVICTION_MIB
    return (
        1000 * instance.vcpus - reserved_millicpu,
        instance.memory_gib * 1024 * VISIBLE_MEMORY - reserved_mib,
    )


def node_groups(environment: str) -> dict[str, list[str]]:
    """Each node group's instance types, as terraform/envs/<env>/main.tf declares them."""
    text = (REPO / "terraform" / "envs" / environment / "main.tf").read_text()
    groups = {name: re.findall(r'"([^"]+)"', types) for name, types in NODE_GROUP.findall(text)}
    assert groups, f"no node groups found in terraform/envs/{environment}/main.tf"
    return groups


def millicpu(quantity: str) -> float:
    return float(quantity[:-1]) if quantity.endswith("m") else 1000 * float(quantity)


def mib(quantity: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, "K": 1e3 / 2**20, "M": 1e6 / 2**20, "G": 1e9 / 2**20}
    number, unit = re.fullmatch(r"([\d.]+)([A-Za-z]*)", quantity).groups()
    return float(number) * units[unit] if unit else float(number) / 2**20


def compiled_tasks(path: Path) -> dict[str, tuple[dict, dict]]:
    """{task: (resources, node selector)} of a compiled pipeline, tasks inside loops included."""
    spec, platform = yaml.safe_load_all(path.read_text())
    platform_executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    dags = [spec["root"]["dag"], *(c["dag"] for c in spec["components"].values() if "dag" in c)]
    tasks = {}
    for body in (b for dag in dags for b in dag["tasks"].values()):
        executor = body["componentRef"]["name"].replace("comp-", "exec-", 1)
        if executor not in spec["deploymentSpec"]["executors"]:
            continue  # a loop or sub-DAG, not a container
        resources = spec["deploymentSpec"]["executors"][executor]["container"].get("resources", {})
        selector = platform_executors.get(executor, {}).get("nodeSelector", {}).get("labels", {})
        tasks[body["taskInfo"]["name"]] = (resources, selector)
    return tasks


@pytest.fixture(scope="module", params=sorted(ENVIRONMENTS))
def environment(request, tmp_path_factory):
    """(name, {task: (resources, node selector)}) of the three pipelines compiled for that environment."""
    folder = tmp_path_factory.mktemp("compile")
    tasks = compiled_tasks(compile_pipeline(folder / "training.yaml", request.param))
    tasks |= compiled_tasks(compile_scoring_pipeline(folder / "scoring.yaml", environment=request.param))
    tasks |= compiled_tasks(
        compile_monitoring_pipeline(folder / "monitoring.yaml", environment=request.param)
    )
    return request.param, tasks


def test_every_step_fits_a_node_of_its_node_group(environment):
    name, tasks = environment
    groups = node_groups(name)
    assert set(tasks) == set(for_environment(name).steps), "the table names every step"
    for task, (resources, selector) in tasks.items():
        pool = selector.get(POOL_LABEL)
        assert pool in groups, f"{name}/{task}: pinned to {pool!r}, node groups are {sorted(groups)}"
        for field in (
            "resourceCpuRequest",
            "resourceCpuLimit",
            "resourceMemoryRequest",
            "resourceMemoryLimit",
        ):
            assert field in resources, f"{name}/{task}: {field} is not set"
        cpu = millicpu(resources["resourceCpuRequest"]), millicpu(resources["resourceCpuLimit"])
        memory = mib(resources["resourceMemoryRequest"]), mib(resources["resourceMemoryLimit"])
        assert cpu[0] <= cpu[1] and memory[0] <= memory[1], f"{name}/{task}: a request above its limit"
        for instance_type in groups[pool]:
            assert instance_type in INSTANCE_TYPES, f"add {instance_type} to INSTANCE_TYPES"
            free_cpu, free_mib = allocatable(INSTANCE_TYPES[instance_type])
            free_cpu, free_mib = free_cpu - DAEMONSETS_MILLICPU, free_mib - DAEMONSETS_MIB
            assert cpu[1] <= free_cpu, (
                f"{name}/{task}: {cpu[1]:.0f}m CPU > {free_cpu:.0f}m on {instance_type}"
            )
            assert memory[1] <= free_mib, (
                f"{name}/{task}: {memory[1]:.0f}Mi > {free_mib:.0f}Mi on {instance_type}"
            )


def test_allocatable_formula_matches_a_measured_node():
    """m5.large (2 vCPU, 8 GiB, 29 pods) reports 1930m and 7244720Ki allocatable on EKS."""
    cpu, memory = allocatable(InstanceType(2, 8, 29))
    assert cpu == pytest.approx(1930)
    assert memory == pytest.approx(7244720 / 1024, abs=1)


def test_an_unknown_environment_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"CHURN_ENV must be one of dev, prod, staging, got 'qa'"):
        compile_pipeline(tmp_path / "p.yaml", "qa")
