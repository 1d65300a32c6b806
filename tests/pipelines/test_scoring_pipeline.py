"""The churn-scoring pipeline under kfp.local: shards fanned out and collected give the single-run bytes."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from components import schema
from components.config import load_settings
from components.score import ScoreConfig, plan_shards, quarantine_uri, run_folder_model, score_table
from components.synthetic import generate
from pipelines.scoring_pipeline import PIPELINE_NAME, compile_scoring_pipeline, run_scoring_local

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
    outputs = {}
    for shards in (3, 1):
        out = tmp_path / f"scores-{shards}.parquet"
        run_scoring_local(
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


def test_compiled_pipeline_fans_out_with_bounded_parallelism_and_sized_shards(tmp_path):
    spec = yaml.safe_load(compile_scoring_pipeline(tmp_path / "scoring.yaml", parallelism=5).read_text())
    assert spec["pipelineInfo"]["name"] == PIPELINE_NAME
    loop = next(t for t in spec["root"]["dag"]["tasks"].values() if "iteratorPolicy" in t)
    assert loop["iteratorPolicy"]["parallelismLimit"] == 5
    shard = spec["deploymentSpec"]["executors"]["exec-score-shard-op"]["container"]["resources"]
    assert shard["cpuLimit"] == 1 and shard["memoryLimit"] == pytest.approx(2.147483648)
