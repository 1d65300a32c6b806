"""The churn-scoring pipeline under kfp.local: shards fanned out and collected give the single-run bytes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from components import schema
from components.config import load_settings
from components.ingest import clean
from components.schema import FEATURES
from components.score import ScoreConfig, plan_shards, quarantine_uri, run_folder_model, score_table
from components.scored_output import report_uri
from components.synthetic import generate
from pipelines.resources import POOL_LABEL
from pipelines.scoring_pipeline import PIPELINE_NAME, compile_scoring_pipeline, run_scoring_local
from serving.examples import v2_request
from tests.support.bundles import register_run
from tests.support.model_server import start_model_server
from tests.support.server_process import free_port
from tests.support.v2_requests import outputs

CHUNK_ROWS = 400


@pytest.fixture(scope="module")
def customers_csv(tmp_path_factory):
    frame = generate(2000, seed=3).drop(columns=[schema.TRUTH_COLUMN]).astype({"tenure": str})
    frame.loc[5, "tenure"] = "two"  # one bad row: quarantined in both runs, with the same row number
    path = tmp_path_factory.mktemp("scoring") / "customers.csv"
    frame.to_csv(path, index=False)
    return path


def test_plan_shards_covers_every_row_group_once_in_order():
    plan = plan_shards([400, 400, 400, 400, 100], 3)
    assert [s["row_groups"] for s in plan] == [[0, 1], [2, 3], [4]]
    assert [s["first_row"] for s in plan] == [1, 801, 1601]
    assert len(plan_shards([10, 10], 8)) == 2  # never an empty shard


def test_fan_out_output_is_byte_identical_to_a_single_shard_run(tmp_path, customers_csv, trained_run):
    model_dir = str(trained_run.artifacts.bundle)
    outputs, reports = {}, {}
    for shards in (3, 1):
        out = tmp_path / f"scores-{shards}.parquet"
        _, reports[shards] = run_scoring_local(
            tmp_path / f"kfp-{shards}", data_uri=str(customers_csv), model_uri=model_dir, out_uri=str(out),
            shards=shards, chunk_rows=CHUNK_ROWS,
        )  # fmt: skip
        outputs[shards] = out
    direct = tmp_path / "direct.parquet"
    model = run_folder_model(trained_run.artifacts.bundle, with_reasons=True)
    score_table(str(customers_csv), str(direct), model, ScoreConfig(chunk_rows=CHUNK_ROWS), load_settings())
    assert outputs[3].read_bytes() == outputs[1].read_bytes() == direct.read_bytes()
    for shards in (3, 1):
        assert (
            (tmp_path / quarantine_uri(outputs[shards].name)).read_bytes()
            == (tmp_path / quarantine_uri(direct.name)).read_bytes()
        )  # fmt: skip
    scored = pd.read_parquet(direct)
    assert len(scored) == 1999 and scored["rank"].tolist() == list(range(1, 2000))
    assert pd.read_csv(tmp_path / quarantine_uri(direct.name))["source_row"].tolist() == [6]
    # the join step's HTML artifact is the run's report, also delivered beside out_uri
    direct_report = (tmp_path / report_uri(direct.name)).read_text()
    for shards in (3, 1):
        page = reports[shards].read_text()
        assert page == (tmp_path / report_uri(outputs[shards].name)).read_text()
        assert _section(page, "Expected profit") == _section(direct_report, "Expected profit")
        assert _section(page, "Segments") == _section(direct_report, "Segments")
        assert f"<tr><th>shards</th><td>{shards}</td></tr>" in page


def _section(page: str, heading: str) -> str:
    return page.split(f"<h2>{heading}", 1)[1].split("<h2>", 1)[0]


def test_compiled_pipeline_fans_out_with_bounded_parallelism_and_sized_shards(tmp_path):
    spec, _platform = yaml.safe_load_all(
        compile_scoring_pipeline(tmp_path / "scoring.yaml", parallelism=5).read_text()
    )
    assert spec["pipelineInfo"]["name"] == PIPELINE_NAME
    loop = next(t for t in spec["root"]["dag"]["tasks"].values() if "iteratorPolicy" in t)
    assert loop["iteratorPolicy"]["parallelismLimit"] == 5
    shard = spec["deploymentSpec"]["executors"]["exec-score-shard-op"]["container"]["resources"]
    assert shard["cpuLimit"] == 1 and shard["memoryLimit"] == pytest.approx(2.147483648)


def test_every_scoring_task_runs_on_the_platform_like_the_training_steps(tmp_path):
    """A shard resolving models:/ in a pod needs the churn-platform ConfigMap, like every training step:
    without it MLflow would silently be a SQLite file inside the pod."""
    _, platform = yaml.safe_load_all(compile_scoring_pipeline(tmp_path / "scoring.yaml").read_text())
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for executor in ("exec-plan-shards-op", "exec-score-shard-op", "exec-rank-op"):
        (source,) = executors[executor]["configMapAsEnv"]
        assert source["configMapName"] == "churn-platform", executor
        assert executors[executor]["nodeSelector"]["labels"] == {POOL_LABEL: "system"}, executor


def _churn(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_cli_scores_equal_the_served_models_probabilities(tmp_path, customers_csv, trained_run):
    """Acceptance: `churn score` and the real model server give the same probabilities (<= 1e-5)."""
    out = tmp_path / "scores.parquet"
    done = _churn(
        "score", "--data", str(customers_csv), "--out", str(out), "--model", str(trained_run.artifacts.bundle)
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "score: 2,000 rows read, 1,999 scored, 1 quarantined" in done.stderr  # progress on stderr
    assert json.loads(done.stdout)["scored"] == 1999
    scored = pd.read_parquet(out).set_index(schema.ID_COLUMN)
    rows = clean(pd.read_csv(customers_csv, dtype=str, keep_default_na=False)).data.head(200)
    server = start_model_server(trained_run.artifacts.bundle, tmp_path / "server.log")
    try:
        served = []
        for start in range(0, len(rows), 50):  # the server's batch limit
            batch = rows.iloc[start : start + 50]
            records = [{f.name: row[f.name] for f in FEATURES} for _, row in batch.iterrows()]
            answer = server.post("/v2/models/churn/infer", json=v2_request(FEATURES, records))
            assert answer.status_code == 200, answer.text
            served += outputs(answer.json())["churn_probability"]["data"]
    finally:
        server.stop()
    ours = scored.loc[rows[schema.ID_COLUMN], "churn_probability"].to_numpy()
    assert np.abs(ours - np.asarray(served)).max() <= 1e-5


def test_cli_scores_a_registered_alias_with_its_mlflow_business_inputs(tmp_path, customers_csv, trained_run):
    env = {**os.environ, "CHURN_HOME": str(tmp_path / "home")}
    registered = register_run(trained_run, load_settings(env))
    uri = f"models:/{registered['registered_model']}@champion"
    out = tmp_path / "scores.csv"
    done = _churn(
        "score", "--data", str(customers_csv), "--out", str(out), "--model", uri, "--format", "csv", env=env
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert summary["registry_version"] == str(registered["version"])
    assert summary["business"]["source"].startswith("MLflow run ")
    scored = pd.read_csv(out)
    assert (
        set(scored["registry_version"].astype(str)) == {str(registered["version"])}
        and scored["reason_1"].notna().all()
    )


@pytest.mark.parametrize(
    ("case", "args", "message"),
    [
        ("unknown alias", ["--model", "models:/churn-classifier-synthetic@nope"], "has no alias 'nope'"),
        (
            "unreachable store",
            ["--data", "s3://customers/week.csv"],
            "s3://customers/week.csv (endpoint http://127.0.0.1:",
        ),
        ("missing column", ["--drop", "Contract"], "required column(s) missing: Contract"),
    ],
)
def test_cli_bad_input_is_one_clear_error_and_no_output(
    tmp_path, customers_csv, trained_run, case, args, message
):
    env = {**os.environ, "CHURN_HOME": str(tmp_path / "home"), "CHURN_IO_RETRIES": "0",
           "CHURN_S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}", "AWS_ACCESS_KEY_ID": "k",
           "AWS_SECRET_ACCESS_KEY": "s"}  # fmt: skip
    if case == "unknown alias":
        register_run(trained_run, load_settings(env))
    data, model = str(customers_csv), ["--model", str(trained_run.artifacts.bundle)]
    if case == "missing column":
        data = str(tmp_path / "no-contract.csv")
        pd.read_csv(customers_csv, dtype=str).drop(columns=[args[1]]).to_csv(data, index=False)
        args = []
    if "--data" in args:
        data, args = args[1], []
    out = tmp_path / "scores.parquet"
    done = _churn("score", "--data", data, "--out", str(out), *(args or model), env=env)
    assert done.returncode == 1, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and message in last, last
    assert not out.exists()


def test_ctrl_c_while_processes_score_is_exit_130_one_line_and_nothing_left(tmp_path, trained_run):
    """Ctrl-C (SIGINT to the terminal's process group) during a forked pass 1: exit 130 with one
    ``error:`` line last, no output or temporary file, and no scoring process left running."""
    customers = generate(100_000, seed=5).drop(columns=[schema.LABEL_COLUMN, schema.TRUTH_COLUMN])
    data, out = tmp_path / "week.parquet", tmp_path / "scores.parquet"
    customers.to_parquet(data, row_group_size=10_000)
    model = str(trained_run.artifacts.bundle)
    command = [sys.executable, "-m", "pipelines.cli", "score", "--data", str(data), "--out", str(out),
               "--model", model, "--no-reasons", "--chunk-rows", "2000"]  # fmt: skip
    churn = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)  # fmt: skip
    try:
        seen = []
        for line in churn.stderr:  # the first progress line: the processes are scoring
            seen.append(line)
            if "rows read" in line:
                break
        os.killpg(churn.pid, signal.SIGINT)
        seen.append(churn.stderr.read())
        assert churn.wait(timeout=60) == 130, "".join(seen)[-3000:]
    finally:
        if churn.poll() is None:
            os.killpg(churn.pid, signal.SIGKILL)
    last = "".join(seen).strip().splitlines()[-1]
    assert last.startswith("error: interrupted; the output"), last
    assert sorted(p.name for p in tmp_path.iterdir()) == ["week.parquet"]
    with pytest.raises(ProcessLookupError):
        os.killpg(churn.pid, 0)  # no process of the command's group is left
