"""Ingest reads its source from a real S3-compatible store (SeaweedFS on 127.0.0.1)."""

from __future__ import annotations

import io

import pytest

from components.artifacts import RunArtifacts
from components.config import load_settings
from components.ingest import IngestConfig, ingest
from components.storage import StorageError
from components.synthetic import generate
from tests.integration.env import ARTIFACT_BUCKET as BUCKET  # an existing bucket: each new one costs volumes


@pytest.fixture(scope="module")
def data_bucket(s3):
    return s3.client()


def test_csv_on_s3_ingests_like_the_local_file(s3, data_bucket, tmp_path):
    frame = generate(1000, seed=4)
    frame.to_csv(tmp_path / "local.csv", index=False)
    body = (tmp_path / "local.csv").read_bytes()
    data_bucket.put_object(BUCKET, "ingest-test/telco.csv", io.BytesIO(body), len(body))

    settings = load_settings(s3.env)
    remote = ingest(
        f"s3://{BUCKET}/ingest-test/telco.csv", RunArtifacts.in_dir(tmp_path / "s3"), IngestConfig(), settings
    )
    local = ingest(
        str(tmp_path / "local.csv"), RunArtifacts.in_dir(tmp_path / "local"), IngestConfig(), settings
    )
    assert remote["rows"] == 1000
    assert remote["data_hash"] == local["data_hash"]
    assert remote["source_uri"] == f"s3://{BUCKET}/ingest-test/telco.csv"


def test_missing_object_and_wrong_keys_fail_naming_the_uri_and_endpoint(s3, data_bucket, tmp_path):
    settings = load_settings(s3.env)
    with pytest.raises(
        StorageError, match=rf"s3://{BUCKET}/ingest-test/absent.csv \(endpoint {s3.endpoint}\).*NoSuchKey"
    ):
        ingest(
            f"s3://{BUCKET}/ingest-test/absent.csv", RunArtifacts.in_dir(tmp_path), IngestConfig(), settings
        )
    wrong = load_settings({**s3.env, "AWS_SECRET_ACCESS_KEY": "not-the-secret"})
    with pytest.raises(StorageError, match=r"SignatureDoesNotMatch|InvalidAccessKeyId|AccessDenied"):
        ingest(f"s3://{BUCKET}/ingest-test/telco.csv", RunArtifacts.in_dir(tmp_path), IngestConfig(), wrong)
