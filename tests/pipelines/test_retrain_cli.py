"""`churn retrain check --host`: the one retrain of an incident submitted to KFP, the others not.

KFP's API server needs a cluster, so the submission goes through the real kfp.Client to the
recording fake of its v2beta1 API (tests/support/kfp_api.py), which validates every body against
the kfp_server_api models. The claims live in a real MLflow store (SQLite).
"""

from __future__ import annotations

import json
import uuid

import pytest

from pipelines.cli import EXIT_ERROR, EXIT_OK, EXIT_USAGE, main
from tests.support.kfp_api import FakeKfpApi
from tests.support.server_process import free_port


@pytest.fixture
def model(monkeypatch, tmp_path) -> str:
    name = f"churn-{uuid.uuid4().hex[:6]}"
    monkeypatch.setenv("CHURN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CHURN_REGISTERED_MODEL", name)
    return name


def result_file(tmp_path, name: str, **changes) -> str:
    """A monitor result as `churn monitor run --json-out` writes it: a MonthlyCharges drift alert."""
    result = {
        "model": {"registered_model": name, "registry_version": "4", "content_sha256": "ab" * 32},
        "window": {
            "since": None,
            "until": None,
            "first": "2026-12-01T00:00:00+00:00",
            "last": "2026-12-01T06:00:00+00:00",
        },
        "rows": 5000,
        "checks": [
            {
                "check": "data_drift",
                "feature": "MonthlyCharges",
                "level": "alert",
                "reason": "PSI 0.41 >= 0.25",
            },
            {"check": "data_drift", "feature": "tenure", "level": "ok", "reason": "PSI 0.01"},
        ],
        "estimate": {"roc_auc": {"value": 0.82, "low": 0.8, "high": 0.84}},
        "live": None,
        "reconciliation": None,
        **changes,
    }
    path = tmp_path / f"result-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(result))
    return str(path)


def check(capsys, *args: str) -> tuple[int, dict | None, str]:
    code = main(["retrain", "check", *args])
    out, err = capsys.readouterr()
    return code, (json.loads(out[out.index("{") :]) if code == EXIT_OK else None), err


def test_the_first_check_submits_to_kfp_and_the_next_ones_do_not(model, tmp_path, capsys):
    with FakeKfpApi() as api:
        given = ("--data", "s3://bucket/fresh.parquet", "--host", api.url, "--budget", "3")
        code, first, _ = check(capsys, "--result", result_file(tmp_path, model), *given)
        assert code == EXIT_OK and first["action"] == "submitted" and api.errors == []
        (run,) = api.runs.values()
        assert run["display_name"] == f"retrain-drift-{first['key'][:12]}"
        params = run["runtime_config"]["parameters"]
        assert (params["data_uri"], params["search_budget"], params["promote"]) == (
            "s3://bucket/fresh.parquet",
            3,
            False,
        )
        assert first["submitted"] == {"id": run["run_id"], "where": api.url}
        for _ in range(2):
            code, again, _ = check(capsys, "--result", result_file(tmp_path, model), *given)
            assert code == EXIT_OK and again["action"] == "skipped" and again["key"] == first["key"]
        assert len(api.runs) == 1
    assert main(["retrain", "list", "--json"]) == EXIT_OK
    (record,) = json.loads(capsys.readouterr().out)
    assert (record["status"], record["submitted"]["id"]) == ("submitted", run["run_id"])


def test_a_quiet_result_submits_nothing(model, tmp_path, capsys):
    quiet = result_file(tmp_path, model, checks=[])
    code, outcome, _ = check(capsys, "--result", quiet, "--data", "fresh.csv", "--host", "http://127.0.0.1:1")
    assert code == EXIT_OK and outcome["action"] == "none"


def test_an_unreachable_kfp_is_one_error_line_and_leaves_the_incident_open(model, tmp_path, capsys):
    dead = f"http://127.0.0.1:{free_port()}"
    code, _, err = check(capsys, "--result", result_file(tmp_path, model), "--data", "f.csv", "--host", dead)
    assert code == EXIT_ERROR and err.splitlines()[-1].startswith("error: retrain submission failed")
    assert main(["retrain", "list", "--json"]) == EXIT_OK
    (record,) = json.loads(capsys.readouterr().out)
    assert record["status"] == "failed" and "KFP server" in record["error"]


def test_bad_inputs_are_named(model, tmp_path, capsys):
    code, _, err = check(capsys, "--result", str(tmp_path / "missing.json"), "--data", "f.csv")
    assert (
        code == EXIT_ERROR and "--result" in err.splitlines()[-1] and "missing.json" in err.splitlines()[-1]
    )
    code, _, err = check(capsys, "--result", result_file(tmp_path, model))
    assert code == EXIT_ERROR and "CHURN_RETRAIN_DATA_URI" in err.splitlines()[-1]
    unregistered = result_file(tmp_path, model, model={"bundle": "/tmp/run/model"})
    code, _, err = check(capsys, "--result", unregistered, "--data", "f.csv")
    assert code == EXIT_ERROR and "is not a registered version" in err.splitlines()[-1]
    assert main(["retrain", "check", "--data", "f.csv"]) == EXIT_USAGE  # neither --result nor --log
