"""Readiness stays false without a loadable model; the server neither crashes nor stops trying."""

from __future__ import annotations

import hashlib
import json
import shutil
import time

import pytest

from components.schema import FEATURES
from serving.examples import example_row, v2_request
from tests.support.model_server import start_model_server

pytestmark = pytest.mark.integration


def test_corrupt_model_is_not_ready_then_recovers(serving_bundle, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(serving_bundle.bundle_dir, bundle)
    good = (bundle / "model.onnx").read_bytes()
    garbage = b"this is not an onnx graph"
    (bundle / "model.onnx").write_bytes(garbage)
    meta = json.loads((bundle / "metadata.json").read_text())
    meta["onnx_sha256"] = hashlib.sha256(garbage).hexdigest()  # get past the checksum to ONNX Runtime itself
    (bundle / "metadata.json").write_text(json.dumps(meta))

    server = start_model_server(bundle, tmp_path / "server.log", wait="live")
    try:
        time.sleep(1.5)  # at least one load attempt and one retry
        assert server.get("/v2/health/live").ok
        assert server.get("/v2/health/ready").status_code == 503
        assert server.get("/v2/models/churn/ready").status_code == 503
        response = server.post("/v2/models/churn/infer", json=v2_request(FEATURES, [example_row(FEATURES)]))
        assert response.status_code == 503, response.text
        log = server.log()
        assert "NOT loaded" in log and "ONNX Runtime cannot load" in log
        assert server.process.poll() is None

        # Fix the bundle in place: the next retry loads it.
        (bundle / "model.onnx").write_bytes(good)
        meta["onnx_sha256"] = hashlib.sha256(good).hexdigest()
        (bundle / "metadata.json").write_text(json.dumps(meta))
        server.wait_ready(timeout=30)
        assert server.get("/v2/health/ready").ok
    finally:
        server.stop()


def test_missing_bundle_is_not_ready(tmp_path):
    server = start_model_server(tmp_path / "nothing-here", tmp_path / "server.log", wait="live")
    try:
        assert server.get("/v2/health/ready").status_code == 503
        assert server.get("/v2/models/churn/ready").status_code == 503
        time.sleep(0.5)
        assert "does not exist" in server.log()
    finally:
        server.stop()
