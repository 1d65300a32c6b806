"""A real Prometheus scrapes the server's /metrics."""

from __future__ import annotations

import pytest

from components.schema import FEATURES
from serving.examples import example_row, v2_request
from tests.support.prometheus_server import prometheus_binary, start_prometheus

pytestmark = pytest.mark.integration


@pytest.mark.skipif(
    prometheus_binary() is None, reason="prometheus not installed (apt-get install prometheus)"
)
def test_prometheus_scrapes_request_and_model_metrics(server, tmp_path):
    for _ in range(3):
        assert server.post("/v2/models/churn/infer", json=v2_request(FEATURES, [example_row(FEATURES)])).ok
    prometheus = start_prometheus([f"127.0.0.1:{server.http_port}"], tmp_path)
    try:
        ok = prometheus.wait_for('churn_requests_total{outcome="ok"}')
        assert float(ok[0]["value"][1]) >= 3
        assert prometheus.wait_for("churn_model_info == 1")[0]["metric"]["model_name"] == "churn"
        assert prometheus.wait_for("request_predict_seconds_count")  # kserve's own histogram
    finally:
        prometheus.stop()
