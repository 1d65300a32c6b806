"""`churn schedule create|list|delete` through the real kfp.Client.

KFP's API server cannot run on one machine (it needs a Kubernetes cluster), so these talk to
tests/support/kfp_api.py: a recording fake of its v2beta1 REST API on 127.0.0.1 that checks
every request body against the kfp_server_api OpenAPI models and the server's own rules.
"""

from __future__ import annotations

import json

import pytest

from pipelines.cli import EXIT_ERROR, EXIT_OK, EXIT_USAGE, main
from tests.support.kfp_api import API, FakeKfpApi
from tests.support.server_process import free_port


@pytest.fixture
def api():
    with FakeKfpApi() as fake:
        yield fake


def churn(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_create_list_delete_a_training_schedule(api, capsys):
    code, out, _ = churn(
        capsys,
        "schedule",
        "create",
        "--host",
        api.url,
        "--cron",
        "30 2 * * 1",
        "--pipeline",
        "churn-training",
        "--param",
        "rows=3000",
        "--param",
        "search_budget=2",
        "--param",
        "promote=false",
        "--json",
    )
    assert code == EXIT_OK and api.errors == []
    created = json.loads(out)  # kfp's own "Experiment details" link went to stderr
    job = api.recurring_runs[created["recurring_run_id"]]
    assert job["trigger"]["cron_schedule"]["cron"] == "0 30 2 * * 1"  # KFP's seconds-first form
    assert job["runtime_config"]["parameters"] == {"rows": 3000, "search_budget": 2, "promote": False}
    assert job["pipeline_spec"]["pipeline_spec"]["pipelineInfo"]["name"] == "churn-training"
    assert (job["no_catchup"], job["max_concurrency"], job["display_name"]) == (
        True,
        "1",
        "churn-training-schedule",
    )
    assert api.experiments[job["experiment_id"]]["display_name"] == "churn"

    # a second schedule reuses the experiment
    code, *_ = churn(
        capsys,
        "schedule",
        "create",
        "--host",
        api.url,
        "--cron",
        "0 0 3 * * *",
        "--pipeline",
        "churn-training",
        "--name",
        "nightly",
    )
    assert code == EXIT_OK and len(api.experiments) == 1 and len(api.recurring_runs) == 2

    code, out, _ = churn(capsys, "schedule", "list", "--host", api.url, "--json")
    listed = json.loads(out)
    assert code == EXIT_OK and {r["name"] for r in listed} == {"nightly", "churn-training-schedule"}
    assert {r["cron"] for r in listed} == {"0 0 3 * * *", "0 30 2 * * 1"}

    code, out, _ = churn(capsys, "schedule", "delete", "--host", api.url, created["recurring_run_id"])
    assert code == EXIT_OK and created["recurring_run_id"] not in api.recurring_runs
    code, out, _ = churn(capsys, "schedule", "list", "--host", api.url)
    assert (
        out.splitlines()[0].split() == ["id", "name", "cron", "status", "created"]
        and len(out.splitlines()) == 2
    )


def test_list_follows_every_page(api, capsys):
    for i in range(3):
        assert (
            churn(
                capsys,
                "schedule",
                "create",
                "--host",
                api.url,
                "--cron",
                "0 3 * * *",
                "--pipeline",
                "churn-training",
                "--name",
                f"s{i}",
            )[0]
            == EXIT_OK
        )
    from pipelines.schedule_cli import list_schedules

    rows = list_schedules(api.url, page_size=2)
    pages = [r for r in api.requests if r[:2] == ("GET", f"{API}/recurringruns")]
    assert sorted(r["name"] for r in rows) == ["s0", "s1", "s2"] and len(pages) == 2


def test_scoring_schedule_needs_its_required_parameters(api, capsys):
    code, _, err = churn(
        capsys,
        "schedule",
        "create",
        "--host",
        api.url,
        "--cron",
        "0 3 * * *",
        "--pipeline",
        "churn-scoring",
        "--param",
        "data_uri=s3://b/customers.parquet",
    )
    assert code == EXIT_USAGE and err.splitlines()[-1].endswith("churn-scoring needs --param for model_uri")
    code, *_ = churn(
        capsys,
        "schedule",
        "create",
        "--host",
        api.url,
        "--cron",
        "0 3 * * *",
        "--pipeline",
        "churn-scoring",
        "--param",
        "data_uri=s3://b/c.parquet",
        "--param",
        "model_uri=models:/m@champion",
        "--param",
        "shards=8",
    )
    assert code == EXIT_OK and api.errors == []
    (job,) = api.recurring_runs.values()
    assert job["runtime_config"]["parameters"]["shards"] == 8


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--cron", "0 3 * *"), "--cron '0 3 * *': expected 5 fields"),
        (("--cron", "0 3 * * * * *"), "expected 5 fields"),
        (("--param", "rows=many"), "--param rows='many': expected an integer"),
        (("--param", "shoe_size=9"), "--param shoe_size: churn-training has no such parameter"),
        (("--param", "rows"), "--param 'rows': expected KEY=VALUE"),
        (("--param", "promote=maybe"), "--param promote='maybe': expected true or false"),
        (("--param", "rows=10"), "rows must be >= 200"),  # PipelineParams' own check, as in submit
        (("--max-concurrency", "0"), "--max-concurrency must be >= 1"),
    ],
)
def test_bad_arguments_are_usage_errors_and_reach_no_server(api, capsys, args, message):
    base = {"--cron": "0 3 * * *"}
    given = dict(zip(args[::2], args[1::2], strict=True))
    argv = ["schedule", "create", "--host", api.url, "--pipeline", "churn-training"]
    for flag, value in {**base, **given}.items():
        argv += [flag, value]
    code, _, err = churn(capsys, *argv)
    assert code == EXIT_USAGE and message in err.splitlines()[-1]
    assert api.requests == []


def test_server_refusals_and_a_dead_server_are_one_error_line(api, capsys):
    code, _, err = churn(capsys, "schedule", "delete", "--host", api.url, "no-such-id")
    assert code == EXIT_ERROR
    assert err.splitlines()[-1].startswith(
        f"error: KFP server {api.url}: delete recurring run no-such-id failed: HTTP 404"
    )
    dead = f"http://127.0.0.1:{free_port()}"
    code, _, err = churn(capsys, "schedule", "list", "--host", dead)
    assert code == EXIT_ERROR and err.splitlines()[-1].startswith(f"error: KFP server {dead}: ")


def test_the_fake_refuses_bodies_the_models_do_not_allow(api):
    """The validation is real: a misspelt field, a bad enum, a 5-field cron are all 400s."""
    import requests

    exp = requests.post(f"{api.url}{API}/experiments", json={"display_name": "e"}, timeout=5).json()
    body = {
        "display_name": "x",
        "experiment_id": exp["experiment_id"],
        "max_concurrency": "1",
        "pipeline_spec": {"root": {}},
        "trigger": {"cron_schedule": {"cron": "0 3 * * *"}},
        "mode": "SOMETIMES",
        "no_catchup": True,
        "cron": "misplaced",
    }
    answer = requests.post(f"{api.url}{API}/recurringruns", json=body, timeout=5)
    assert answer.status_code == 400
    assert any(".cron: not a field of V2beta1RecurringRun" in e for e in api.errors)
    assert any("'SOMETIMES' is not one of RecurringRunMode" in e for e in api.errors)
    del body["cron"], body["mode"]
    answer = requests.post(f"{api.url}{API}/recurringruns", json=body, timeout=5)
    assert answer.status_code == 400 and "not a 6-field" in answer.json()["error"]


def test_a_monitoring_schedule_every_15_minutes(api, capsys):
    code, _, err = churn(
        capsys,
        "schedule",
        "create",
        "--host",
        api.url,
        "--cron",
        "*/15 * * * *",
        "--pipeline",
        "churn-monitoring",
    )
    assert code == EXIT_USAGE and err.splitlines()[-1].endswith("churn-monitoring needs --param for log_uri")
    code, *_ = churn(
        capsys,
        "schedule",
        "create",
        "--host",
        api.url,
        "--cron",
        "*/15 * * * *",
        "--pipeline",
        "churn-monitoring",
        "--param",
        "log_uri=s3://payloads/churn/",
        "--param",
        "last_hours=0.25",
        "--param",
        "retrain_data_uri=s3://data/fresh.parquet",
    )
    assert code == EXIT_OK and api.errors == []
    (job,) = api.recurring_runs.values()
    assert job["trigger"]["cron_schedule"]["cron"] == "0 */15 * * * *"
    assert job["runtime_config"]["parameters"]["last_hours"] == 0.25
    assert job["pipeline_spec"]["pipeline_spec"]["pipelineInfo"]["name"] == "churn-monitoring"
