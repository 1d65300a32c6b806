"""The whole pipeline under kfp.local, through the `churn` CLI, as `make run` does it."""

import json
import os
import re
import subprocess
import sys

import onnx

from components import schema

ROWS = 5000


def _churn(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args], capture_output=True, text=True, env=env
    )


def test_local_run_produces_every_artifact(tmp_path):
    out = tmp_path / "run"
    # Its own registry: a first version, not one judged against a champion another test left.
    home = {**os.environ, "CHURN_HOME": str(tmp_path / "home")}
    done = _churn("run", "--rows", str(ROWS), "--budget", "2", "--cv-folds", "2", "--out", str(out), env=home)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "=== churn run summary ===" in done.stdout
    # Progress instead of kfp's executor dumps: each step, and each training candidate with the best so far.
    assert "KFP Executor" not in done.stdout + done.stderr and "KFP Executor" in (out / "kfp.log").read_text()
    for step in ("ingest", "train", "evaluate", "export", "register"):
        assert f"{step} done in " in done.stdout, step
    assert re.search(r"train: candidate 1/2 .*best .*s elapsed", done.stdout), done.stdout
    assert re.search(r"train: candidate 2/2 ", done.stdout)
    assert json.loads((out / "status.json").read_text())["state"] == "finished"

    for name in ("metrics.json", "report.html", "model/model.onnx", "model/metadata.json",
                 "data_profile.json", "quarantine.csv", "registration.json", "summary.json"):  # fmt: skip
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    summary = json.loads((out / "summary.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert summary["data"]["source_uri"] == f"synthetic://?rows={ROWS}&seed=42"
    assert summary["data"]["rows"] == ROWS
    assert summary["metrics"]["roc_auc"] == metrics["roc_auc"] > 0.75
    assert "oracle_roc_auc" in summary["metrics"]
    onnx.checker.check_model(onnx.load(out / "model" / "model.onnx"))
    meta = json.loads((out / "model" / "metadata.json").read_text())
    assert meta["data_hash"] == summary["data"]["data_hash"]
    # Registered in the (embedded) registry; a laptop run promotes a passing first version.
    registration = summary["registry"]
    assert registration["gate"]["verdict"] == "passed"
    assert registration["champion_after"] == registration["version"]
    assert "registry" in done.stdout and f"v{registration['version']}" in done.stdout
    # kfp.local recorded the Metrics and ClassificationMetrics the KFP UI draws.
    executor = json.loads(next((out / "kfp").glob("*/evaluate-op/executor_output.json")).read_text())
    artifacts = executor["artifacts"]
    assert artifacts["metrics"]["artifacts"][0]["metadata"]["roc_auc"] == metrics["roc_auc"]
    assert "confusionMatrix" in artifacts["classification"]["artifacts"][0]["metadata"]


def test_a_failed_run_ends_with_the_steps_own_message(tmp_path):
    """The step's error is the last line; kfp's executor dumps are in the run's log, not on screen."""
    bad = tmp_path / "bad.csv"
    bad.write_text("customerID,tenure\n1,3\n")
    home = tmp_path / "home"
    done = _churn("run", "--data", str(bad), env={**os.environ, "CHURN_HOME": str(home)})
    assert done.returncode == 1, done.stderr[-3000:]
    message = f"label column '{schema.LABEL_COLUMN}' is missing (found columns: ['customerID', 'tenure'])"
    assert done.stderr.splitlines()[-1] == f"error: {message}"
    shown = done.stdout + done.stderr
    assert "KFP Executor" not in shown and "Traceback" not in shown and "\x1b[" not in shown
    assert "ingest failed" in done.stdout
    (run,) = [p for p in (home / "runs").iterdir()]
    log = (run / "kfp.log").read_text()
    assert "KFP Executor" in log and f"IngestError: {message}" in log and "\x1b[" not in log
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "failed" and status["error"] == message
    assert not (home / "runs" / "latest").exists()


def test_verbose_run_shows_kfps_own_output(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("customerID,tenure\n1,3\n")
    done = _churn("run", "-v", "--data", str(bad), "--out", str(tmp_path / "run"))
    assert done.returncode == 1 and "KFP Executor" in done.stdout
    assert done.stderr.splitlines()[-1].startswith("error: label column 'Churn' is missing")


def test_expected_errors_are_one_line_and_exit_1(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "old.txt").write_text("a previous run's file")
    for args, message in (
        (
            ["data", "generate", "--rows", "0", "--out", str(tmp_path / "d.csv")],
            "error: rows must be >= 1, got 0",
        ),
        (["run", "--out", str(tmp_path / "run")], f"error: --out {tmp_path / 'run'} exists and is not empty"),
    ):
        done = _churn(*args)
        assert done.returncode == 1, (args, done.stderr[-500:])
        assert done.stderr.strip().splitlines()[-1].startswith(message) and "Traceback" not in done.stderr


def test_help_needs_no_settings():
    """Building the parser reads no settings: a broken setting breaks commands, not --help."""
    env = {**os.environ, "CHURN_IO_TIMEOUT_S": "soon"}
    done = _churn("run", "--help", env=env)
    assert done.returncode == 0 and "--max-bad-share" in done.stdout and "(default: 0.05)" in done.stdout
    done = _churn("pipeline", "submit", "--host", "http://127.0.0.1:9", env=env)
    assert (
        done.returncode == 1
        and done.stderr.strip() == "error: CHURN_IO_TIMEOUT_S must be a number, got 'soon'"
    )


def test_generate_writes_the_schema(tmp_path):
    done = _churn("data", "generate", "--rows", "500", "--seed", "3", "--out", str(tmp_path / "d.csv"))
    assert done.returncode == 0, done.stderr
    assert "wrote 500 rows" in done.stdout
    header = (tmp_path / "d.csv").read_text().splitlines()[0].split(",")
    assert header == [*schema.REQUIRED_COLUMNS, schema.TRUTH_COLUMN]


def test_bad_parameters_fail_before_anything_runs(tmp_path):
    for args, message in (
        (["--model-type", "svm"], "model_type must be one of xgboost, logreg, random_forest"),
        (["--offer-success-rate", "2"], "offer_success_rate must be in (0, 1]"),
        (["--max-bad-share", "1.5"], "max_bad_share must be in [0, 1)"),
        (["--min-roc-auc", "7"], "min_roc_auc must be within [0, 1]"),
    ):
        done = _churn("run", *args, "--out", str(tmp_path / "run"))
        assert done.returncode == 2 and message in done.stderr, (args, done.stderr[-500:])
    assert not (tmp_path / "run").exists()
