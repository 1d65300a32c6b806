"""kustomize overlays: they build offline, validate strictly against the KServe and Kubernetes
OpenAPI models, and agree with the terraform that creates the roles and buckets they name."""

from __future__ import annotations

import functools
import re
from pathlib import Path

import pytest
import yaml

from tests.infra import openapi_models
from tests.infra.tools import REPO, explain, require_tool, run

MANIFESTS = REPO / "manifests"
OVERLAYS = sorted(p.parent for p in (MANIFESTS / "overlays").glob("*/kustomization.yaml"))
IDS = [p.name for p in OVERLAYS]
SERVING_ARGS = [
    "--model_name",
    "{{.Name}}",
    "--model_dir",
    "/mnt/models",
    "--http_port",
    "8080",
    "--grpc_port",
    "8081",
]


def read_env(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


@functools.cache
def build(overlay: Path) -> tuple[dict, ...]:
    kubectl = require_tool("kubectl", "the kubectl client (it embeds kustomize)")
    result = run([kubectl, "kustomize", str(overlay)])
    assert result.returncode == 0, explain(result)
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def one(docs, kind: str, name: str | None = None) -> dict:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def terraform_text(*parts: str) -> str:
    return (REPO / "terraform" / Path(*parts)).read_text()


def test_three_overlays():
    assert IDS == ["dev", "prod", "staging"]


@pytest.mark.parametrize("overlay", OVERLAYS, ids=IDS)
def test_builds_with_every_placeholder_filled(overlay):
    docs = build(overlay)
    text = yaml.safe_dump_all(docs)
    for placeholder in read_env(overlay / "platform.env") | read_env(overlay / "release.env"):
        assert placeholder not in text, f"{placeholder} left unreplaced"
    assert not [d for d in docs if d["kind"] == "ConfigMap"], "value ConfigMaps must stay local-only"


@pytest.mark.parametrize("overlay", OVERLAYS, ids=IDS)
def test_objects_match_the_kserve_and_kubernetes_models(overlay):
    checked = set()
    for doc in build(overlay):
        model = openapi_models.model_for(doc)
        if model is None:
            continue
        checked.add(doc["kind"])
        assert openapi_models.errors(doc, model) == [], f"{doc['kind']}/{doc['metadata']['name']}"
    assert {"InferenceService", "ServingRuntime", "ServiceAccount", "NetworkPolicy"} <= checked


def test_the_model_check_catches_a_misplaced_field():
    bad = {"apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "metadata": {"name": "x"}}
    bad["spec"] = {"predictor": {"canaryTraficPercent": 10, "minReplicas": "one"}}
    problems = openapi_models.errors(bad, openapi_models.model_for(bad))
    assert any("canaryTraficPercent" in p for p in problems) and any("minReplicas" in p for p in problems)


@pytest.mark.parametrize("overlay", OVERLAYS, ids=IDS)
def test_service_accounts_carry_the_roles_terraform_binds_to_them(overlay):
    env = overlay.name
    platform = read_env(overlay / "platform.env")
    docs = build(overlay)
    iam_defaults = terraform_text("modules", "iam", "variables.tf")
    role_suffixes = dict(
        re.findall(r'(\w+)\s*=\s*\{ suffix = "([\w-]+)"', terraform_text("modules", "iam", "roles.tf"))
    )
    for workload, key in [
        ("model_reader", "MODEL_READER_ROLE_ARN"),
        ("pipeline_runner", "PIPELINE_RUNNER_ROLE_ARN"),
        ("mlflow_server", "MLFLOW_SERVER_ROLE_ARN"),
    ]:
        # The service account terraform's trust policy names must be the one the manifests annotate.
        namespace, name = re.search(
            rf'{workload}\s*=\s*\{{ namespace = "([\w-]+)", name = "([\w-]+)" \}}', iam_defaults
        ).groups()
        account = one(
            [d for d in docs if d["metadata"].get("namespace") == namespace], "ServiceAccount", name
        )
        arn = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
        assert arn == platform[key]
        assert re.fullmatch(rf"arn:aws:iam::\d{{12}}:role/churn-{env}-{role_suffixes[workload]}", arn), arn


@pytest.mark.parametrize("overlay", OVERLAYS, ids=IDS)
def test_inference_service_reads_the_models_prefix_through_the_reader_role(overlay):
    platform, release = read_env(overlay / "platform.env"), read_env(overlay / "release.env")
    docs = build(overlay)
    isvc = one(docs, "InferenceService", "churn")
    predictor = isvc["spec"]["predictor"]
    prefix = re.search(
        r'variable "models_prefix".*?default\s*=\s*"([^"]+)"',
        terraform_text("modules", "iam", "variables.tf"),
        re.S,
    )[1]
    expected = f"s3://{platform['MODELS_BUCKET']}/{prefix}{release['MODEL_VERSION']}/"
    assert predictor["model"]["storageUri"] == expected
    assert predictor["serviceAccountName"] == "churn-model-reader"
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Serverless"
    assert 0 <= predictor["canaryTrafficPercent"] <= 100, "canary-ready: the rollout step patches this"
    assert predictor["nodeSelector"] == {"churn.io/pool": "inference"}
    runtime = one(docs, "ServingRuntime", predictor["model"]["runtime"])
    formats = [f["name"] for f in runtime["spec"]["supportedModelFormats"]]
    assert predictor["model"]["modelFormat"]["name"] in formats


@pytest.mark.parametrize("overlay", OVERLAYS, ids=IDS)
def test_serving_runtime_starts_our_server_non_root(overlay):
    platform, release = read_env(overlay / "platform.env"), read_env(overlay / "release.env")
    (container,) = one(build(overlay), "ServingRuntime", "churn-onnx")["spec"]["containers"]
    assert container["command"] == ["python", "-m", "serving"]
    assert container["args"] == SERVING_ARGS
    assert container["image"] == f"{platform['SERVING_IMAGE']}:{release['SERVING_IMAGE_TAG']}"
    assert [p["containerPort"] for p in container["ports"]] == [8080]
    security = container["securityContext"]
    assert security["runAsNonRoot"] and not security["allowPrivilegeEscalation"]
    assert security["capabilities"]["drop"] == ["ALL"]


@pytest.mark.parametrize("overlay", OVERLAYS, ids=IDS)
def test_prometheus_scrapes_port_8080_metrics(overlay):
    monitor = one(build(overlay), "PodMonitor")
    assert monitor["spec"]["selector"]["matchLabels"] == {"serving.kserve.io/inferenceservice": "churn"}
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert (endpoint["targetPort"], endpoint["path"]) == (8080, "/metrics")


@pytest.mark.parametrize("overlay", OVERLAYS, ids=IDS)
def test_network_is_default_deny_and_drains_stay_possible(overlay):
    docs = build(overlay)
    deny = one(docs, "NetworkPolicy", "default-deny")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    predictor_policy = one(docs, "NetworkPolicy", "churn-predictor")["spec"]
    allowed_ports = {p["port"] for rule in predictor_policy["ingress"] for p in rule["ports"]}
    assert 8080 in allowed_ports
    pdb = one(docs, "PodDisruptionBudget")["spec"]
    isvc = one(docs, "InferenceService")["spec"]["predictor"]
    assert pdb["selector"]["matchLabels"]["serving.kserve.io/inferenceservice"] == "churn"
    # A budget that forbids every eviction would block node drains and cluster upgrades.
    assert pdb.get("maxUnavailable", 0) >= 1 or pdb["minAvailable"] < isvc["minReplicas"]
    if overlay.name != "dev":
        assert isvc["minReplicas"] >= 2, "a canary needs a stable peer outside dev"


def test_overlay_keys_are_what_terraform_outputs():
    output_keys = set(re.findall(r'"([A-Z_]+)=\$\{', terraform_text("modules", "platform", "outputs.tf")))
    for overlay in OVERLAYS:
        assert set(read_env(overlay / "platform.env")) == output_keys, overlay.name
