"""A new user's session on a clean CHURN_HOME: the README's commands in order, outputs checked.

`make run` (synthetic), `make run DATA=<messy export>`, `make serve` + the README's curl (urllib
here), then `churn registry list / show / compare --data / promote / rollback`. `churn run` gets
small --rows/--budget so the session stays short; everything else is what the README says.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

from pipelines.cli import EXIT_GATE_FAILED
from tests.support.server_process import free_port

REPO = Path(__file__).resolve().parents[2]
FAST = ("--budget", "1", "--cv-folds", "2")
BASE_MODEL = "churn-classifier"


@pytest.fixture
def user(tmp_path):
    """Runs `churn ...` as a user would, in a fresh folder with a fresh CHURN_HOME."""
    env = {**os.environ, "CHURN_HOME": str(tmp_path / "home"), "CHURN_REGISTERED_MODEL": BASE_MODEL}

    def churn(*args: str, expect: int = 0) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [sys.executable, "-m", "pipelines.cli", *args],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600,
        )  # fmt: skip
        assert done.returncode == expect, (args, done.stdout[-2000:], done.stderr[-3000:])
        return done

    churn.env, churn.home, churn.cwd = env, tmp_path / "home", tmp_path
    return churn


def _messy_export(churn, path: Path) -> Path:
    """A Telco export as they come: odd header case, Yes/no/1/0 labels, blanks, text, duplicates."""
    churn("data", "generate", "--rows", "2500", "--seed", "11", "--no-truth", "--out", "clean.csv")
    df = pd.read_csv(churn.cwd / "clean.csv", dtype=str)
    df = df.rename(columns={"tenure": "Tenure", "Contract": " contract ", "PaymentMethod": "payment_method"})
    df.loc[df.index[::7], "Churn"] = df.loc[df.index[::7], "Churn"].map({"Yes": "1", "No": "0"})
    df.loc[df.index[::11], "Churn"] = df.loc[df.index[::11], "Churn"].str.lower()
    df.loc[df.index[::13], " contract "] = df.loc[df.index[::13], " contract "].str.lower()
    df.loc[df.index[5:8], "TotalCharges"] = " "
    df.loc[df.index[9], "Tenure"] = "-4"  # quarantined: outside the schema's range
    df = pd.concat([df, df.head(5)])  # exact duplicates
    df.to_csv(path, index=False)
    return path


def _summary(churn) -> dict:
    return json.loads((churn.home / "runs" / "latest" / "summary.json").read_text())


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def _serve(churn, log_path: Path):
    """`churn serve` on free ports; the process (own session) and its HTTP base URL once ready."""
    http, grpc = free_port(), free_port()
    with open(log_path, "wb") as log:
        command = ["serve", "--http-port", str(http), "--grpc-port", str(grpc)]
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipelines.cli", *command],
            stdout=log, stderr=subprocess.STDOUT, env=churn.env, cwd=churn.cwd, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{http}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, log_path.read_text()[-3000:]
        try:
            with urllib.request.urlopen(f"{url}/v2/models/churn/ready", timeout=2) as ready:
                if ready.status == 200:
                    return proc, url
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    raise AssertionError(f"churn serve not ready in 90 s: {log_path.read_text()[-3000:]}")


def test_a_new_users_session_follows_the_readme(user, tmp_path):
    # make run: the synthetic demo registers under its own name and becomes its champion
    done = user("run", "--rows", "2000", *FAST)
    demo = _summary(user)["registry"]
    assert "=== churn run summary ===" in done.stdout and "KFP Executor" not in done.stdout
    assert (demo["registered_model"], demo["version"], demo["champion_after"]) == (
        f"{BASE_MODEL}-synthetic",
        "1",
        "1",
    )

    # make run DATA=<messy export>: cleaned, bad rows quarantined, the user's own model v1
    messy = _messy_export(user, tmp_path / "telco messy.csv")
    done = user("run", "--data", str(messy), *FAST)
    summary = _summary(user)
    assert summary["data"]["quarantined"] >= 1 and summary["data"]["rows"] >= 2400
    real = summary["registry"]
    assert (real["registered_model"], real["version"], real["champion_after"]) == (BASE_MODEL, "1", "1")
    assert f"registry        {real['message']}" in done.stdout

    # make serve + the README's curl: the champion of the latest run's registered model answers
    proc, url = _serve(user, tmp_path / "serve.log")
    try:
        request = json.loads((REPO / "docs" / "examples" / "v2-request.json").read_text())
        answer = _post(f"{url}/v2/models/churn/infer", request)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    assert answer["model_name"] == "churn" and answer["model_version"] == real["version"]
    outputs = {o["name"]: o for o in answer["outputs"]}
    assert 0.0 <= outputs["churn_probability"]["data"][0] <= 1.0

    # a run whose gate fails: registered, never champion, and its own exit code for CI
    done = user(
        "run", "--data", str(messy), "--seed", "5", "--min-roc-auc", "0.99", *FAST, expect=EXIT_GATE_FAILED
    )
    failed = _summary(user)["registry"]
    assert (failed["version"], failed["gate"]["verdict"], failed["champion_after"]) == ("2", "failed", "1")
    assert done.stderr.splitlines()[-1].startswith(f"gate failed: v2 of {BASE_MODEL} stays a candidate")

    listed = user("registry", "list").stdout.splitlines()
    rows = {line.split()[0]: line.split() for line in listed[2:]}
    assert set(rows) == {"1", "2"} and "champion" in rows["1"][3].split(",") and rows["2"][4] == "failed"
    shown = user("registry", "show", "2").stdout
    assert shown.startswith(f"{BASE_MODEL} v2") and "gate            failed" in shown
    compared = user("registry", "compare", "1", "2", "--data", str(messy)).stdout
    assert "roc_auc on --data" in compared and "rows scored" in compared
    promoted = user("registry", "promote", "2", "--reason", "e2e: manual override", "--force").stdout
    assert "champion: v1 -> v2" in promoted
    rolled = user("registry", "rollback", "--reason", "e2e: back").stdout
    assert "champion rolled back: v2 -> v1" in rolled
    assert json.loads(user("registry", "list", "--alias", "champion", "--json").stdout)[0]["version"] == "1"
