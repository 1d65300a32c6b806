"""The monitor on a payload log written by the real model server (``python -m serving`` on 127.0.0.1),
with the version found from the log through a real MLflow registry (SQLite store) and the model store."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest
from mlflow import MlflowClient

from components import bundle, reference
from components.config import load_settings
from components.monitor_model import log_to_mlflow, resolve_reference
from components.monitoring import OK, run_monitor
from components.registry_names import TAG_MONITOR_RUN, TAG_MONITOR_STATUS
from components.schema import FEATURE_NAMES, FEATURES
from components.synthetic import Drift, generate
from serving.examples import v2_request
from tests.support.bundles import register_run
from tests.support.model_server import start_model_server

BATCH = 250


def _send(server, frame, prefix: str) -> None:
    records = frame[list(FEATURE_NAMES)].to_dict("records")
    for i in range(0, len(records), BATCH):
        answer = server.post(
            "/v2/models/churn/infer", json=v2_request(FEATURES, records[i : i + BATCH], f"{prefix}{i}")
        )
        assert answer.status_code == 200, answer.text


@pytest.fixture(scope="module")
def served_log(trained_run, tmp_path_factory):
    """3,000 undrifted rows, then 3,000 with bills 30% higher, through the real server's payload log."""
    work = tmp_path_factory.mktemp("served")
    server = start_model_server(
        trained_run.artifacts.bundle, work / "server.log",
        extra_args=["--payload_log_uri", str(work / "payload"), "--payload_log_flush_seconds", "1"],
    )  # fmt: skip
    try:
        _send(server, generate(3_000, seed=55), "plain-")
        time.sleep(1.5)  # the two phases in distinct flushes and times
        boundary = datetime.now(timezone.utc)
        time.sleep(0.1)
        _send(server, generate(3_000, seed=56, drift=Drift(monthly_charges_scale=1.3)), "drifted-")
    finally:
        server.stop()  # SIGTERM: the payload log flushes what it holds
    return work / "payload", boundary


def test_monitor_reads_the_real_servers_log(served_log, trained_run):
    log, boundary = served_log
    ref = reference.load(trained_run.artifacts.bundle)
    settings = load_settings()
    plain = run_monitor(str(log), ref, settings=settings, until=boundary)
    drifted = run_monitor(str(log), ref, settings=settings, since=boundary)
    assert (plain.rows, drifted.rows) == (3_000, 3_000)
    assert plain.alerted("data_drift") == set(), [c.reason for c in plain.alerts]
    assert "MonthlyCharges" in drifted.alerted("data_drift")
    untouched = {"gender", "SeniorCitizen", "Partner", "Dependents", "Contract", "PaymentMethod"}
    assert not untouched & drifted.alerted("data_drift")
    assert {c.level for c in plain.checks if c.check == "unknown_categories"} == {OK}


def test_the_version_is_found_from_the_log_and_the_metrics_land_on_it(served_log, trained_run, tmp_path):
    """Register the served bundle, then let the monitor find it by the log's content_sha256."""
    settings = load_settings()
    summary = register_run(trained_run, settings)
    log, boundary = served_log
    ref, model = resolve_reference(settings, str(log), tmp_path, since=boundary)
    assert model["content_sha256"] == bundle.read_metadata(trained_run.artifacts.bundle).content_sha256
    assert model["registry_version"] == str(summary["version"])
    assert model["registered_model"] == summary["registered_model"]
    assert ref == reference.load(trained_run.artifacts.bundle)
    result = run_monitor(str(log), ref, settings=settings, since=boundary, model=model)
    run_id = log_to_mlflow(settings, result)
    client = MlflowClient(settings.mlflow_tracking_uri)
    version = client.get_model_version(summary["registered_model"], str(summary["version"]))
    assert version.tags[TAG_MONITOR_STATUS] == result.status == "alert"
    assert version.tags[TAG_MONITOR_RUN] == run_id
    metrics = client.get_run(run_id).data.metrics
    assert metrics["drift.psi.MonthlyCharges"] == pytest.approx(
        result.features["MonthlyCharges"]["psi"], rel=1e-6
    )
    assert metrics["window.rows"] == 3_000
