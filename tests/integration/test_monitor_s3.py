"""The monitor on S3 (SeaweedFS on 127.0.0.1): a payload log written by the server's own S3 sink,
and a reference published with its bundle to an S3 model store and downloaded back."""

from __future__ import annotations

import uuid

from components import bundle, reference
from components.config import load_settings
from components.model_store import ModelStore
from components.monitor_model import bundle_for
from components.monitoring import run_monitor
from components.synthetic import Drift, generate
from tests.integration.env import ARTIFACT_BUCKET as BUCKET  # an existing bucket: each new one costs volumes
from tests.support.payload_logs import make_reference, write_log


def test_payload_log_on_s3_is_monitored_like_a_local_one(s3, tmp_path):
    settings = load_settings(s3.env)
    frame = generate(4_000, seed=71, drift=Drift(monthly_charges_scale=1.3))
    prefix = f"s3://{BUCKET}/payload-{uuid.uuid4().hex[:8]}"
    write_log(prefix, frame, per_request=500, settings=settings, flush_rows=1_000)  # 4 objects
    write_log(tmp_path / "local", frame, per_request=500, flush_rows=1_000)
    ref = make_reference()
    remote = run_monitor(prefix, ref, settings=settings)
    local = run_monitor(str(tmp_path / "local"), ref, settings=settings)
    assert remote.rows == local.rows == 4_000
    assert remote.window["files"] == 4
    assert remote.to_dict()["checks"] == local.to_dict()["checks"]
    assert "MonthlyCharges" in remote.alerted("data_drift")


def test_reference_travels_with_the_bundle_through_an_s3_model_store(s3, trained_run, tmp_path):
    settings = load_settings(s3.env)
    store = ModelStore(f"s3://{BUCKET}/models-{uuid.uuid4().hex[:8]}", settings)
    staged = store.stage(trained_run.artifacts.bundle)
    published = store.commit(staged, staged.metadata.registered(3, "churn-classifier", "run-3"))
    assert bundle.REFERENCE_FILE in published.files
    local = bundle_for(settings, published.uri, tmp_path)
    assert reference.load(local) == reference.load(trained_run.artifacts.bundle)
    assert bundle.bundle_digest(local)[0] == published.sha256
