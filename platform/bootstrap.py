"""Install the cluster platform of one environment: `make platform ENV=dev|staging|prod`.

The plan is built from platform/versions.yaml (every version, in install order), the values files
under platform/values/ (shared, then per environment) and `terraform output -json bootstrap`
(cluster, region, VPC, controller roles, MLflow database). `--dry-run` prints the commands,
`--json` prints the plan as data (the infra tests read it); without either, each step runs in
order and the first failure stops the install. Every step is idempotent (helm upgrade --install,
kubectl apply), so a failed install is resumed by running it again.

Waits are part of the plan: CRDs are Established before anything uses them, cert-manager is up
before KServe (its webhooks need certificates), Knative's flags are set before KServe.
"""

import argparse
import json
import shlex
import subprocess
import sys
import urllib.parse
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent
REPO = ROOT.parent
ENVIRONMENTS = ("dev", "staging", "prod")
HELM_TIMEOUT = "10m"
MLFLOW_SECRET = "mlflow-backend-store"
CHURN_NAMESPACE = "churn"


@dataclass
class Step:
    """One command of the install; `secret` names a Secret built at run time and piped to stdin."""

    component: str
    argv: list[str]
    secret: str | None = None

    def shell(self) -> str:
        line = shlex.join(self.argv)
        return f"{line}  # stdin: {self.secret}" if self.secret else line


@dataclass
class Plan:
    env: str
    steps: list[Step] = field(default_factory=list)

    def add(self, component: str, *argv: str, secret: str | None = None) -> None:
        self.steps.append(Step(component, list(argv), secret))


def load_versions(path: Path = ROOT / "versions.yaml") -> dict:
    """The one versions file."""
    return yaml.safe_load(path.read_text())


def values_files(name: str, env: str) -> list[Path]:
    """Shared values of a component, then the environment's own, where they exist."""
    candidates = [ROOT / "values" / f"{name}.yaml", ROOT / "values" / env / f"{name}.yaml"]
    return [p for p in candidates if p.exists()]


def role_annotation(prefix: str, arn: str) -> str:
    # helm --set needs the dots of the annotation key escaped.
    return f"{prefix}.annotations.eks\\.amazonaws\\.com/role-arn={arn}"


def helm_settings(name: str, env: str, outputs: dict) -> list[str]:
    """--set values that come from terraform (account-specific) rather than from values files."""
    region, cluster = outputs["region"], outputs["cluster_name"]
    return {
        "cluster-autoscaler": [
            f"autoDiscovery.clusterName={cluster}",
            f"awsRegion={region}",
            role_annotation("rbac.serviceAccount", outputs["cluster_autoscaler_role_arn"]),
        ],
        "aws-load-balancer-controller": [
            f"clusterName={cluster}",
            f"region={region}",
            f"vpcId={outputs['vpc_id']}",
            role_annotation("serviceAccount", outputs["load_balancer_controller_role_arn"]),
        ],
        "gha-runner-scale-set": [
            f"githubConfigUrl=https://github.com/{outputs['github_repository']}",
            f"runnerScaleSetName=churn-{env}",
        ],
    }.get(name, [])


def add_helm(plan: Plan, component: dict, outputs: dict) -> None:
    name, chart = component["name"], component.get("chart", component["name"])
    repo = component["repo"]
    source = [f"{repo}/{chart}"] if repo.startswith("oci://") else [chart, "--repo", repo]
    argv = ["helm", "upgrade", "--install", name, *source, "--version", str(component["version"])]
    argv += ["--namespace", component["namespace"], "--create-namespace"]
    for path in values_files(name, plan.env):
        argv += ["--values", str(path.relative_to(REPO))]
    for setting in helm_settings(name, plan.env, outputs):
        argv += ["--set", setting]
    plan.add(name, *argv, "--wait", "--timeout", HELM_TIMEOUT)
    if component.get("crds"):
        wait_for_crds(plan, name, component["crds"])


def wait_for_crds(plan: Plan, name: str, kinds: list[str]) -> None:
    crds = [f"crd/{crd_name(kind)}" for kind in kinds]
    plan.add(name, "kubectl", "wait", "--for=condition=Established", "--timeout=120s", *crds)


def crd_name(kind: str) -> str:
    """`InferenceService.serving.kserve.io` -> `inferenceservices.serving.kserve.io` (the default
    plural rules the CRDs of versions.yaml follow)."""
    singular, group = kind.split(".", 1)
    word = singular.lower()
    if word.endswith("params"):
        plural = word
    elif word.endswith("y") and word[-2] not in "aeiou":
        plural = word[:-1] + "ies"
    elif word.endswith("s"):
        plural = word + "es"
    else:
        plural = word + "s"
    return f"{plural}.{group}"


def add_manifests(plan: Plan, component: dict) -> None:
    name, base = component["name"], f"{component['repo']}/{component['version']}"
    for file in component["files"]:
        plan.add(name, "kubectl", "apply", "--server-side", "-f", f"{base}/{file}")
        if "crds" in file:
            wait_for_crds(plan, name, component["crds"])
    wait_for_deployments(plan, name, component["namespace"])
    if name == "knative-serving":
        add_knative_config(plan)


def add_kustomize(plan: Plan, component: dict) -> None:
    name = component["name"]
    for index, path in enumerate(component["paths"]):
        plan.add(name, "kubectl", "apply", "--server-side", "-k",
                 f"{component['repo']}/{path}?ref={component['version']}")  # fmt: skip
        if index == 0:  # the first path holds the CRDs the later ones create objects of
            wait_for_crds(plan, name, component["crds"])


def wait_for_deployments(plan: Plan, name: str, namespace: str) -> None:
    plan.add(name, "kubectl", "wait", "--for=condition=Available", "deployment", "--all",
             "--namespace", namespace, "--timeout=600s")  # fmt: skip


def add_knative_config(plan: Plan) -> None:
    """Merge platform/values/knative-serving.yaml into Knative's ConfigMaps (flags, ingress)."""
    config = yaml.safe_load((ROOT / "values" / "knative-serving.yaml").read_text())
    for configmap, data in config.items():
        patch = json.dumps({"data": data}, sort_keys=True)
        plan.add("knative-serving", "kubectl", "patch", "configmap", configmap, "--namespace",
                 "knative-serving", "--type", "merge", "--patch", patch)  # fmt: skip


def add_churn(plan: Plan) -> None:
    """The environment's overlay, MLflow's database secret (from Secrets Manager), then MLflow up."""
    plan.add("churn", "kubectl", "apply", "-k", f"manifests/overlays/{plan.env}")
    plan.add("churn", "kubectl", "apply", "--namespace", CHURN_NAMESPACE, "-f", "-", secret=MLFLOW_SECRET)
    plan.add("churn", "kubectl", "rollout", "status", "deployment/mlflow-server", "--namespace",
             CHURN_NAMESPACE, "--timeout=600s")  # fmt: skip


def build_plan(env: str, outputs: dict, versions: dict | None = None) -> Plan:
    """Every command `make platform ENV=env` runs, in order."""
    if env not in ENVIRONMENTS:
        raise SystemExit(f"unknown environment {env!r}: one of {', '.join(ENVIRONMENTS)}")
    versions = versions or load_versions()
    plan = Plan(env)
    plan.add("kubeconfig", "aws", "eks", "update-kubeconfig", "--region", outputs["region"], "--name",
             outputs["cluster_name"])  # fmt: skip
    adders = {"helm": lambda c: add_helm(plan, c, outputs), "manifests": lambda c: add_manifests(plan, c),
              "kustomize": lambda c: add_kustomize(plan, c)}  # fmt: skip
    for component in versions["components"]:
        adders[component["type"]](component)
    add_churn(plan)
    return plan


def backend_store_secret(outputs: dict) -> str:
    """The Secret holding MLflow's backend-store URI, built from the RDS-managed secret.

    The password goes from Secrets Manager into the manifest on kubectl's stdin, never onto a
    command line, and is percent-encoded: RDS passwords may hold characters a URI reserves.
    """
    import boto3

    client = boto3.client("secretsmanager", region_name=outputs["region"])
    value = client.get_secret_value(SecretId=outputs["mlflow_database_secret_arn"])["SecretString"]
    credentials = json.loads(value)
    user = urllib.parse.quote(credentials["username"], safe="")
    password = urllib.parse.quote(credentials["password"], safe="")
    uri = f"postgresql://{user}:{password}@{outputs['mlflow_database_endpoint']}/mlflow?sslmode=require"
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": MLFLOW_SECRET, "namespace": CHURN_NAMESPACE},
        "type": "Opaque",
        "stringData": {"MLFLOW_BACKEND_STORE_URI": uri},
    }
    return json.dumps(secret)


def terraform_outputs(env: str) -> dict:
    """`terraform output -json bootstrap` of the environment's root."""
    root = REPO / "terraform" / "envs" / env
    result = subprocess.run(
        ["terraform", f"-chdir={root}", "output", "-json", "bootstrap"],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(result.stdout)


def run(plan: Plan, outputs: dict) -> None:
    for number, step in enumerate(plan.steps, 1):
        print(f"[{number}/{len(plan.steps)}] {step.component}: {step.shell()}", flush=True)
        stdin = backend_store_secret(outputs) if step.secret == MLFLOW_SECRET else None
        result = subprocess.run(step.argv, cwd=REPO, input=stdin, text=True, check=False)
        if result.returncode != 0:
            raise SystemExit(f"step {number} ({step.component}) failed with exit {result.returncode}; "
                             "fix it and run the bootstrap again (every step is idempotent)")  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", required=True, choices=ENVIRONMENTS)
    parser.add_argument(
        "--outputs", type=Path, help="terraform bootstrap output as JSON (default: ask terraform)"
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    mode.add_argument("--json", action="store_true", help="print the plan as JSON, run nothing")
    args = parser.parse_args(argv)
    outputs = json.loads(args.outputs.read_text()) if args.outputs else terraform_outputs(args.env)
    plan = build_plan(args.env, outputs)
    if args.json:
        json.dump({"env": plan.env, "steps": [asdict(s) for s in plan.steps]}, sys.stdout, indent=1)
    elif args.dry_run:
        print("\n".join(step.shell() for step in plan.steps))
    else:
        run(plan, outputs)


if __name__ == "__main__":
    main()
