"""Every S3 request the real clients make is allowed by the IAM policy Terraform renders for them.

- KServe's storage initializer (kserve-storage, the model download) as the model reader,
- the project's own minio client (data fetch, model publish) as the pipeline runner,
- MLflow's S3 artifact repository (boto3) as the MLflow server.

AWS cannot run here, so moto's server stands in for it: Terraform's AWS provider creates the
roles and their policies through moto's IAM API (the policy documents are exactly what an apply
would send), and the clients talk to moto's S3, whose request log is the list of calls they
made. Each call is then authorised against the role's policy (tests/infra/iam_policy.py), the way
S3 authorises it (HeadBucket as s3:ListBucket without s3:prefix, copies as PutObject, ...).
"""

from __future__ import annotations

import hashlib
import json
import os
import textwrap

import boto3
import pytest

from tests.infra import terraform_env
from tests.infra.iam_policy import Check, allowed, s3_checks
from tests.infra.moto_server import MotoServer, moto_server
from tests.infra.tools import REPO, TOOLS_VENV, explain, find_tool, run

PREFIX = "churn-iamtest"
BUCKETS = {purpose: f"{PREFIX}-{purpose}" for purpose in ("data", "artifacts", "models")}
ROLES = {
    "model_reader": "kserve-model-reader",
    "pipeline_runner": "pipeline-runner",
    "mlflow_server": "mlflow-server",
}
ROOT_TF = """
terraform {
  required_providers {
    aws = { source = "hashicorp/aws" }
  }
}

provider "aws" {
  region                      = "eu-west-1"
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_requesting_account_id  = true
  skip_metadata_api_check     = true
  endpoints {
    iam = "%(url)s"
    sts = "%(url)s"
  }
}

module "iam" {
  source            = "%(module)s"
  name_prefix       = "%(prefix)s"
  oidc_provider_arn = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABC"
  oidc_issuer_url   = "https://oidc.eks.eu-west-1.amazonaws.com/id/ABC"
  kms_key_arn       = "arn:aws:kms:eu-west-1:123456789012:key/k"
  bucket_arns       = %(buckets)s
}
"""


@pytest.fixture(scope="module")
def aws(tmp_path_factory) -> MotoServer:
    with moto_server(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture(scope="module")
def policies(aws, tmp_path_factory) -> dict[str, dict]:
    """Each role's inline policy, as `terraform apply` of modules/iam put it into (moto's) IAM."""
    binary = find_tool("terraform")
    if binary is None:
        pytest.skip("terraform is not installed (needs the terraform CLI >= 1.10 on PATH)")
    work = tmp_path_factory.mktemp("iam-apply")
    tree, env = terraform_env.prepare(REPO / "terraform", work, terraform_env.find_provider_mirror())
    # Inside the copy, so the module's own ../irsa-role stays a local path.
    root = tree / "iam-apply"
    root.mkdir()
    arns = {purpose: f"arn:aws:s3:::{name}" for purpose, name in BUCKETS.items()}
    root.joinpath("main.tf").write_text(
        ROOT_TF % {"url": aws.url, "module": "../modules/iam", "prefix": PREFIX, "buckets": json.dumps(arns)}
    )
    for step in (["init", "-input=false"], ["apply", "-auto-approve", "-input=false"]):
        result = run([binary, *step, "-no-color"], cwd=root, env=env, timeout=600)
        assert result.returncode == 0, explain(result)
    iam = boto3.client("iam", endpoint_url=aws.url, region_name="eu-west-1", **_keys())
    found = {}
    for workload, suffix in ROLES.items():
        name = f"{PREFIX}-{suffix}"
        document = iam.get_role_policy(RoleName=name, PolicyName=name)["PolicyDocument"]
        found[workload] = json.loads(document) if isinstance(document, str) else document
    return found


@pytest.fixture(scope="module")
def s3(aws):
    client = boto3.client("s3", endpoint_url=aws.url, region_name="eu-west-1", **_keys())
    for name in BUCKETS.values():
        client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    return client


def _keys() -> dict[str, str]:
    return {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


def calls(aws: MotoServer, action) -> list[Check]:
    """The IAM checks of every S3 request made while running action()."""
    before = len(aws.requests())
    action()
    return [check for line in aws.requests()[before:] for check in s3_checks(line)]


def assert_allowed(policy: dict, checks: list[Check]) -> None:
    assert checks, "the client made no S3 request"
    denied = sorted(
        {
            f"{c.action} {c.resource} {c.context or ''} <- {c.request}"
            for c in checks
            if not allowed(policy, c)
        }
    )
    assert not denied, "denied:\n" + "\n".join(denied)


def test_kserve_storage_initializer_can_download_the_model(aws, s3, policies, tmp_path):
    key_prefix = "churn/models/1"
    for name in ("model.onnx", "metadata.json"):
        s3.put_object(Bucket=BUCKETS["models"], Key=f"{key_prefix}/{name}", Body=b"x" * 64)
    python = TOOLS_VENV / "bin" / "python"
    if not python.exists():
        pytest.skip("kserve-storage lives in the tools venv: make tools")
    script = textwrap.dedent(
        """
        import sys
        from kserve_storage import Storage
        Storage.download(sys.argv[1], sys.argv[2])
        """
    )
    uri = f"s3://{BUCKETS['models']}/{key_prefix}/"
    env = {**os.environ, **aws.env(), "S3_USE_HTTPS": "0", "S3_VERIFY_SSL": "0"}

    def download():
        result = run([str(python), "-c", script, uri, str(tmp_path / "models")], env=env, timeout=120)
        assert result.returncode == 0, explain(result)

    checks = calls(aws, download)
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["metadata.json", "model.onnx"]
    assert any(c.action == "s3:ListBucket" and not c.context for c in checks), "HeadBucket is among its calls"
    assert_allowed(policies["model_reader"], checks)


def test_pipeline_runner_can_read_data_and_publish_models(aws, s3, policies, tmp_path, monkeypatch):
    from components import bundle
    from components.config import load_settings
    from components.model_store import ModelStore
    from components.schema import schema_dict
    from components.storage import fetch

    data = b"customerID,Churn\n1,No\n"
    data_key = f"churn/raw/sha256={hashlib.sha256(data).hexdigest()}/telco.csv"
    s3.put_object(Bucket=BUCKETS["data"], Key=data_key, Body=data)
    settings = load_settings({**aws.env(), "CHURN_S3_ENDPOINT_URL": aws.url})
    onnx = b"not really onnx, the store only moves bytes"
    metadata = bundle.BundleMetadata(
        model_name="churn",
        model_type="xgboost",
        content_sha256=hashlib.sha256(onnx).hexdigest(),
        threshold=0.5,
        schema=schema_dict(),
        inputs=[],
        metrics={},
        parity_max_abs_diff=0.0,
        data_hash="0" * 64,
        library_versions={},
        created_at="2026-01-01T00:00:00Z",
    )
    bundle_dir = tmp_path / "bundle"
    bundle_dir.mkdir()
    bundle.write(bundle_dir, onnx, metadata)
    store = ModelStore(f"s3://{BUCKETS['models']}/churn/models", settings)

    def pipeline():
        fetch(f"s3://{BUCKETS['data']}/{data_key}", settings, tmp_path / "data")
        store.preflight()
        staged = store.stage(bundle_dir)
        store.commit(staged, staged.metadata.registered(7, "churn-classifier", "run-1"))

    checks = calls(aws, pipeline)
    assert any(c.action == "s3:PutObject" and "/churn/models/7/" in c.resource for c in checks)
    assert_allowed(policies["pipeline_runner"], checks)


def test_mlflow_server_can_store_and_serve_artifacts(aws, s3, policies, tmp_path, monkeypatch):
    from mlflow.store.artifact.s3_artifact_repo import S3ArtifactRepository

    for key, value in aws.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("MLFLOW_S3_ENDPOINT_URL", aws.url)
    (tmp_path / "report.html").write_text("<html></html>")
    (tmp_path / "out").mkdir()
    repo = S3ArtifactRepository(f"s3://{BUCKETS['artifacts']}/mlflow/1/0123abcd/artifacts")

    def server():
        repo.log_artifact(str(tmp_path / "report.html"), "evaluation")
        assert [f.path for f in repo.list_artifacts("evaluation")] == ["evaluation/report.html"]
        repo.download_artifacts("evaluation/report.html", str(tmp_path / "out"))

    checks = calls(aws, server)
    assert_allowed(policies["mlflow_server"], checks)


def test_the_evaluation_denies_what_a_role_may_not_do(policies):
    """The checker is not a rubber stamp: writes by the reader, other buckets, other prefixes."""
    models = f"arn:aws:s3:::{BUCKETS['models']}"
    reader, mlflow = policies["model_reader"], policies["mlflow_server"]
    assert not allowed(reader, Check("s3:PutObject", f"{models}/churn/models/1/model.onnx"))
    assert not allowed(reader, Check("s3:GetObject", f"arn:aws:s3:::{BUCKETS['data']}/x"))
    assert not allowed(
        mlflow, Check("s3:ListBucket", f"arn:aws:s3:::{BUCKETS['artifacts']}", {"s3:prefix": "kfp/"})
    )
    assert not allowed(mlflow, Check("s3:GetObject", f"arn:aws:s3:::{BUCKETS['artifacts']}/kfp/run/x"))
    assert s3_checks("HEAD /b") == [Check("s3:ListBucket", "arn:aws:s3:::b", {}, "HEAD /b")]
    with pytest.raises(ValueError, match="no IAM mapping"):
        s3_checks("PUT /b/k?tagging")
