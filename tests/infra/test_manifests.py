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
PLATFORM_VERSIONS = yaml.safe_load((REPO / "platform" / "versions.yaml").read_text())
# API groups every Kubernetes API server serves; any other group must be a CRD someone installs.
BUILT_IN_GROUPS = {"", "apps", "batch", "networking.k8s.io", "policy", "rbac.authorization.k8s.io"}
OVERLAYS = sorted(p.parent for p in (MANIFESTS / "overlays").glob("*/kustomization.yaml"))
IDS = [p.name for p in OVERLAYS]
SERVING_ARGS = [
    # The pod must listen on every interface: the server binds loopback unless told otherwise.
    "--host",
    "0.0.0.0",
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
    value_maps = [
        d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] in {"platform", "release"}
    ]
    assert not value_maps, "value ConfigMaps must stay local-only"


@pytest.mark.parametrize("overlay", OVERLAYS, ids=IDS)
def test_objects_match_the_kserve_and_kubernetes_models(overlay):
    checked = set()
    for doc in build(overlay):
        model = openapi_models.model_for(doc)
        if model is None:
            continue
        checked.add(doc["kind"])
        assert openapi_models.errors(doc, model) == [], f"{doc['kind']}/{doc['metadata']['name']}"
    assert {"InferenceService", "ServingRuntime", "ServiceAccount", "NetworkPolicy", "Deployment"} <= checked


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
    assert (endpoint["portNumber"], endpoint["path"]) == (8080, "/metrics")


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


def api_group(doc: dict) -> str:
    return doc["apiVersion"].rpartition("/")[0]


def bootstrap_crds() -> set[str]:
    """`Kind.group` of every custom resource the bootstrap installs (or EKS itself serves)."""
    kinds = set(PLATFORM_VERSIONS["eks"]["crds"])
    return kinds | {kind for c in PLATFORM_VERSIONS["components"] for kind in c.get("crds", [])}


def bootstrap_namespaces() -> set[str]:
    return {"default", "kube-system"} | {c["namespace"] for c in PLATFORM_VERSIONS["components"]}


@pytest.mark.parametrize("overlay", OVERLAYS, ids=IDS)
def test_every_kind_is_built_in_or_installed_by_the_bootstrap(overlay):
    """`kubectl apply -k` on a fresh cluster fails on a kind whose CRD nothing installed."""
    crds = bootstrap_crds()
    for doc in build(overlay):
        if api_group(doc) not in BUILT_IN_GROUPS:
            assert f"{doc['kind']}.{api_group(doc)}" in crds, f"{doc['kind']} ({doc['apiVersion']}): no CRD"


@pytest.mark.parametrize("overlay", OVERLAYS, ids=IDS)
def test_every_namespace_is_created_by_the_overlay_or_the_bootstrap(overlay):
    docs = build(overlay)
    created = {d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"} | bootstrap_namespaces()
    used = {d["metadata"]["namespace"] for d in docs if "namespace" in d["metadata"]}
    for policy in (d for d in docs if d["kind"] == "NetworkPolicy"):
        for rule in policy["spec"].get("ingress", []) + policy["spec"].get("egress", []):
            for peer in rule.get("from", []) + rule.get("to", []):
                used |= {v for k, v in peer.get("namespaceSelector", {}).get("matchLabels", {}).items()}
    assert used <= created, f"namespaces nothing creates: {used - created}"


@pytest.mark.parametrize("overlay", OVERLAYS, ids=IDS)
def test_release_names_an_image_tag_make_images_pushes(overlay):
    """`make images` pushes <version>-<12-hex git sha> (immutable in ECR); a bare version never exists."""
    release = read_env(overlay / "release.env")
    assert re.fullmatch(r"\d+\.\d+\.\d+-[0-9a-f]{12}", release["SERVING_IMAGE_TAG"]), release
    text = run(
        ["make", "-n", "-f", "Makefile", "-f", "platform/platform.mk", "release-env", f"ENV={overlay.name}"],
        cwd=REPO,
    )
    assert text.returncode == 0, explain(text)
    assert re.search(r"SERVING_IMAGE_TAG=\d+\.\d+\.\d+-[0-9a-f]{12}", text.stdout), text.stdout


@pytest.mark.parametrize("overlay", OVERLAYS, ids=IDS)
def test_network_policies_let_knative_and_prometheus_in(overlay):
    """With enforcement on, Knative's autoscaler must reach queue-proxy's 9090 and Prometheus
    (in the namespace the bootstrap installs it into) the metrics ports."""
    prometheus_ns = next(c for c in PLATFORM_VERSIONS["components"] if c["name"] == "kube-prometheus-stack")
    knative_ns = next(c for c in PLATFORM_VERSIONS["components"] if c["name"] == "knative-serving")
    rules = one(build(overlay), "NetworkPolicy", "churn-predictor")["spec"]["ingress"]

    def allowed(namespace: str) -> set[int]:
        return {
            port["port"]
            for rule in rules
            for peer in rule["from"]
            if peer.get("namespaceSelector", {}).get("matchLabels")
            == {"kubernetes.io/metadata.name": namespace}
            for port in rule["ports"]
        }

    assert {8012, 9090} <= allowed(knative_ns["namespace"])
    assert {8080, 9091} <= allowed(prometheus_ns["namespace"])


@pytest.mark.parametrize("overlay", OVERLAYS, ids=IDS)
def test_mlflow_server_runs_on_rds_and_s3_with_its_own_security_group(overlay):
    platform, release = read_env(overlay / "platform.env"), read_env(overlay / "release.env")
    docs = build(overlay)
    deployment = one(docs, "Deployment", "mlflow-server")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert pod["serviceAccountName"] == "mlflow-server"
    assert container["image"] == f"{platform['MLFLOW_IMAGE']}:{release['MLFLOW_IMAGE_TAG']}"
    secret_ref = env["MLFLOW_BACKEND_STORE_URI"]["valueFrom"]["secretKeyRef"]
    assert secret_ref == {"name": "mlflow-backend-store", "key": "MLFLOW_BACKEND_STORE_URI"}
    prefix = re.search(
        r'variable "mlflow_artifact_prefix".*?default\s*=\s*"([^"]+)"',
        terraform_text("modules", "iam", "variables.tf"),
        re.S,
    )[1]
    assert (
        env["MLFLOW_ARTIFACTS_DESTINATION"]["value"]
        == f"s3://{platform['ARTIFACTS_BUCKET']}/{prefix.rstrip('/')}"
    )
    service = one(docs, "Service", "mlflow-server")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    policy = one(docs, "SecurityGroupPolicy", "mlflow-server")["spec"]
    assert policy["podSelector"] == deployment["spec"]["selector"]
    assert policy["securityGroups"]["groupIds"] == [platform["MLFLOW_DB_CLIENT_SG"], platform["CLUSTER_SG"]]


@pytest.mark.parametrize("overlay", OVERLAYS, ids=IDS)
def test_pipeline_pods_get_the_platform_configuration(overlay):
    """Pipeline pods (namespace kubeflow) find MLflow's Service, the model store KServe reads, and a
    pipeline root under the only artifacts prefix that expires."""
    platform = read_env(overlay / "platform.env")
    docs = build(overlay)
    config = one(docs, "ConfigMap", "churn-platform")
    assert config["metadata"]["namespace"] == "kubeflow"
    service = one(docs, "Service", "mlflow-server")
    port = service["spec"]["ports"][0]["port"]
    expected = (
        f"http://{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local:{port}"
    )
    assert config["data"]["MLFLOW_TRACKING_URI"] == expected
    models_prefix = re.search(
        r'variable "models_prefix".*?default\s*=\s*"([^"]+)"',
        terraform_text("modules", "iam", "variables.tf"),
        re.S,
    )[1]
    assert (
        config["data"]["CHURN_MODEL_STORE_URI"]
        == f"s3://{platform['MODELS_BUCKET']}/{models_prefix.rstrip('/')}"
    )
    assert config["data"]["AWS_REGION"] == platform["CLUSTER_REGION"]
    launcher = one(docs, "ConfigMap", "kfp-launcher")["data"]
    root_prefix = re.search(
        r'variable "pipeline_root_prefix".*?default\s*=\s*"([^"]+)"',
        terraform_text("modules", "storage", "variables.tf"),
        re.S,
    )[1]
    assert launcher["defaultPipelineRoot"] == f"s3://{platform['ARTIFACTS_BUCKET']}/{root_prefix.rstrip('/')}"
    provider = yaml.safe_load(launcher["providers"])["s3"]["default"]
    assert provider["region"] == platform["CLUSTER_REGION"] and provider["credentials"] == {"fromEnv": True}
