"""Retraining that starts itself once, end to end on one machine.

A champion trained by `churn run` on a labelled export is served by the real model server
(`python -m serving` through tests/support's launcher) with its payload log on; a drifted stream
(the generator's drift knobs: bills up 30%, a third of long contracts moved to month-to-month)
goes through it. Then `churn retrain check --log` runs the monitor on that real payload log and
decides on its result, five times: twice at once (racing for the incident), then three times
one after another. Exactly one retrain starts (under kfp.local, on fresh labelled data of the
drifted population) and registers a new version through the normal gate; the other four find
the incident taken. Small data (3,000 rows, budget 1) keeps it to a few minutes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

from components.config import load_settings
from components.schema import FEATURE_NAMES, FEATURES
from pipelines.serve import resolve_model
from serving.examples import v2_request
from tests.support.model_server import start_model_server

REPO = Path(__file__).resolve().parents[2]
MODEL = "churn-classifier"
FAST = ("--budget", "1", "--cv-folds", "2")
DRIFT = ("--drift-charges-scale", "1.3", "--drift-month-to-month", "0.3")
BATCH = 250


def _churn(env: dict, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-3000:])
    return done


def _monitor_then_check(env: dict, cwd: Path, i: int) -> subprocess.Popen:
    """`churn retrain check --log`: one monitor run on the payload log, then the decision on its result."""
    args = ["retrain", "check", "--log", "payload", "--json-out", f"result-{i}.json",
            "--report", f"report-{i}.html", "--data", "fresh.csv", *FAST,
            "--owner", f"monitor-{i}"]  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd,
    )  # fmt: skip


def _outcome(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, (out[-2000:], err[-3000:])
    return json.loads(out[out.index("{") :])


def test_a_drifted_stream_starts_exactly_one_retrain_that_passes_the_gate(tmp_path):
    env = {**os.environ, "CHURN_HOME": str(tmp_path / "home"), "CHURN_REGISTERED_MODEL": MODEL}
    _churn(env, tmp_path, "data", "generate", "--rows", "3000", "--seed", "11", "--out", "train.csv")
    _churn(env, tmp_path, "run", "--data", "train.csv", *FAST)
    _churn(env, tmp_path, "data", "generate", "--rows", "3000", "--seed", "13", "--out", "stream.csv", *DRIFT)
    _churn(env, tmp_path, "data", "generate", "--rows", "3000", "--seed", "17", "--out", "fresh.csv", *DRIFT)

    # the champion on the real server, its payload log on; the drifted stream through it
    champion = resolve_model(load_settings(env))
    server = start_model_server(
        champion, tmp_path / "server.log", env=env,
        extra_args=["--payload_log_uri", str(tmp_path / "payload"), "--payload_log_flush_seconds", "1"],
    )  # fmt: skip
    try:
        stream = pd.read_csv(tmp_path / "stream.csv")[list(FEATURE_NAMES)].to_dict("records")
        for i in range(0, len(stream), BATCH):
            answer = server.post(
                "/v2/models/churn/infer", json=v2_request(FEATURES, stream[i : i + BATCH], f"r{i}")
            )
            assert answer.status_code == 200, answer.text
    finally:
        server.stop()  # SIGTERM: the payload log flushes what it holds
    assert sum(len(pd.read_parquet(p)) for p in (tmp_path / "payload").glob("*.parquet")) == len(stream)

    # two monitors at once, then three more one after another
    racing = [_monitor_then_check(env, tmp_path, i) for i in (1, 2)]
    outcomes = [_outcome(proc) for proc in racing]
    for i in (3, 4, 5):
        outcomes.append(_outcome(_monitor_then_check(env, tmp_path, i)))

    result = json.loads((tmp_path / "result-1.json").read_text())
    assert result["model"]["registered_model"] == MODEL and result["model"]["registry_version"] == "1"
    assert "MonthlyCharges" in {a["feature"] for a in result["alerts"] if a["level"] == "alert"}
    actions = [o["action"] for o in outcomes]
    assert sorted(actions) == ["skipped"] * 4 + ["submitted"], actions
    assert len({o["key"] for o in outcomes}) == 1 and {o["kind"] for o in outcomes} == {"drift"}
    (won,) = [o for o in outcomes if o["action"] == "submitted"]
    assert (won["submitted"]["registered_model"], won["submitted"]["version"]) == (MODEL, "2")
    assert all("already claimed" in o["message"] for o in outcomes if o["action"] == "skipped")

    # the one record, and the new version through the gate (as any `churn run`)
    records = json.loads(_churn(env, tmp_path, "retrain", "list", "--json").stdout)
    assert [(r["status"], r["kind"], r["model_version"]) for r in records] == [("submitted", "drift", "1")]
    assert records[0]["submitted"]["gate"] == won["submitted"]["gate"]
    versions = json.loads(_churn(env, tmp_path, "registry", "list", "--json").stdout)
    assert sorted(v["version"] for v in versions) == ["1", "2"]
    (new,) = [v for v in versions if v["version"] == "2"]
    assert new["gate"] == won["submitted"]["gate"] == "passed", new
    assert "champion" in new["aliases"]
