"""Readiness stays false without a loadable model; the server neither crashes nor stops trying."""

from __future__ import annotations

import hashlib
import shutil
import time
from dataclasses import replace

import pytest

from components import bundle as contract
from components.schema import FEATURES
from serving.examples import example_row, v2_request
from tests.support.model_server import start_model_server

pytestmark = pytest.mark.integration


def _replace_model(bundle, onnx_bytes: bytes) -> None:
    """Swap ``model.onnx`` and record its hash, so the load gets past the checksum to ONNX Runtime."""
    (bundle / contract.MODEL_FILE).write_bytes(onnx_bytes)
    metadata = replace(contract.read_metadata(bundle), content_sha256=hashlib.sha256(onnx_bytes).hexdigest())
    contract.write_metadata(bundle, metadata)


def test_corrupt_model_is_not_ready_then_recovers(bundle_dir, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(bundle_dir, bundle)
    good = (bundle / contract.MODEL_FILE).read_bytes()
    _replace_model(bundle, b"this is not an onnx graph")

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
        _replace_model(bundle, good)
        server.wait_ready(timeout=30)
        assert server.get("/v2/health/ready").ok
    finally:
        server.stop()


def test_replaced_model_file_fails_the_hash_check(bundle_dir, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(bundle_dir, bundle)
    (bundle / contract.MODEL_FILE).write_bytes(b"not the graph metadata.json names")
    server = start_model_server(bundle, tmp_path / "server.log", wait="live")
    try:
        time.sleep(1.0)
        assert server.get("/v2/models/churn/ready").status_code == 503
        assert "corrupt or replaced file" in server.log()
    finally:
        server.stop()


def test_missing_bundle_is_not_ready(tmp_path):
    server = start_model_server(tmp_path / "nothing-here", tmp_path / "server.log", wait="live")
    try:
        assert server.get("/v2/health/ready").status_code == 503
        assert server.get("/v2/models/churn/ready").status_code == 503
        time.sleep(0.5)
        assert f"missing {contract.MODEL_FILE}" in server.log()
    finally:
        server.stop()
