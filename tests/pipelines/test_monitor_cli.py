"""``churn monitor run|serve``: JSON, the HTML report, exit codes, and gauges on /metrics."""

from __future__ import annotations

import base64
import json
import re
import sys

import pytest
import requests

from components.synthetic import Drift, generate
from pipelines.cli import main
from pipelines.monitor_cli import EXIT_VERDICT, duration
from tests.support.payload_logs import write_log
from tests.support.prometheus_server import start_prometheus
from tests.support.server_process import ServerProcess, free_port, http_ok


@pytest.fixture(scope="module")
def drifted_log(tmp_path_factory):
    return write_log(
        tmp_path_factory.mktemp("log"), generate(3_000, seed=61, drift=Drift(monthly_charges_scale=1.3))
    )


@pytest.fixture(scope="module")
def model(trained_run):
    return str(trained_run.artifacts.bundle)


def test_run_writes_json_and_a_self_contained_report(tmp_path, drifted_log, model, capsys):
    out, report = tmp_path / "monitor.json", tmp_path / "monitor.html"
    code = main(["monitor", "run", "--log", str(drifted_log), "--model", model,
                 "--json-out", str(out), "--report", str(report)])  # fmt: skip
    assert code == 0
    data = json.loads(out.read_text())
    assert data["status"] == "alert" and data["rows"] == 3_000
    assert any(a["check"] == "data_drift" and a["feature"] == "MonthlyCharges" for a in data["alerts"])
    assert "alert data_drift:MonthlyCharges: PSI" in capsys.readouterr().err
    page = report.read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) >= 10  # score distribution, AUC over time, per-feature plots
    assert base64.b64decode(images[0])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "http" not in page.split("<body>")[1]  # nothing fetched from elsewhere


def test_fail_on_gives_its_own_exit_code(drifted_log, model, capsys):
    args = ["monitor", "run", "--log", str(drifted_log), "--model", model, "--json-out", "/dev/null"]
    assert main([*args, "--fail-on", "alert"]) == EXIT_VERDICT == 5
    assert (
        main([*args, "--fail-on", "alert", "--psi-alert", "50", "--psi-warn", "40", "--js-alert", "1"]) == 0
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--since", "2031-01-01"], "error: empty window: no payload-log rows"),
        (["--psi-warn", "0.5", "--psi-alert", "0.2"], "error: need 0 < psi_warn <= psi_alert"),
    ],
)
def test_errors_are_one_line_and_exit_1(drifted_log, model, capsys, extra, message):
    assert main(["monitor", "run", "--log", str(drifted_log), "--model", model, *extra]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(message)


def test_a_bundle_without_a_reference_is_named(tmp_path, drifted_log, trained_run, capsys):
    old = tmp_path / "old"
    old.mkdir()
    for name in ("model.onnx", "metadata.json"):
        (old / name).write_bytes((trained_run.artifacts.bundle / name).read_bytes())
    meta = json.loads((old / "metadata.json").read_text())
    meta.pop("reference_sha256")
    (old / "metadata.json").write_text(json.dumps(meta))
    assert main(["monitor", "run", "--log", str(drifted_log), "--model", str(old)]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: no reference in this bundle")


def test_durations_and_bad_values():
    assert duration("7d").days == 7 and duration("30m").seconds == 1800 and duration("52w").days == 364
    with pytest.raises(Exception, match="expected a duration"):
        duration("a week")


def test_serve_exposes_a_gauge_per_feature_and_check(tmp_path, drifted_log, model):
    port = free_port()
    server = ServerProcess("churn monitor serve", tmp_path / "serve.log")
    command = [sys.executable, "-m", "pipelines.cli", "monitor", "serve", "--log", str(drifted_log),
               "--model", model, "--last", "5000w", "--port", str(port), "--interval", "3600"]  # fmt: skip

    def scraped() -> bool:
        return (
            http_ok(f"http://127.0.0.1:{port}/metrics")
            and "churn_monitor_psi" in requests.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
        )

    server.launch(command, scraped, timeout=120, what="serving gauges")
    try:
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        prometheus = start_prometheus([f"127.0.0.1:{port}"], tmp_path / "prometheus", job="churn-monitor")
        try:  # a real Prometheus scrapes and queries them
            (sample,) = prometheus.wait_for('churn_monitor_psi{feature="MonthlyCharges"} > 0.25')
            alerting = prometheus.wait_for('churn_monitor_check_level{check="data_drift"} == 3')
        finally:
            prometheus.stop()
    finally:
        server.stop()
    assert sample["metric"]["job"] == "churn-monitor"
    assert "MonthlyCharges" in {s["metric"]["feature"] for s in alerting}
    psi = {
        m.group(1): float(m.group(2))
        for m in re.finditer(r'churn_monitor_psi\{[^}]*feature="(\w+)"[^}]*\} (\S+)', text)
    }
    assert {"MonthlyCharges", "tenure", "Contract", "score"} <= set(psi)
    assert psi["MonthlyCharges"] > 0.25 > psi["gender"]
    level = r'churn_monitor_check_level\{check="data_drift",content_id="\w{12}",feature="MonthlyCharges",'
    assert re.search(level + r'registry_version="unregistered"\} 3\.0', text)
    assert re.search(r"churn_monitor_window_rows\{[^}]*\} 3000\.0", text)
    assert re.search(r'churn_monitor_estimated_roc_auc\{bound="low"', text)
