"""The training pipeline's search fanned out over tasks (search_shards > 1) under kfp.local."""

from __future__ import annotations

import json

import joblib
import numpy as np
import pandas as pd
import yaml

from components.params import PipelineParams
from components.train import fit
from pipelines.remote import compile_pipeline


def test_fanned_out_search_under_kfp_local_gives_the_in_process_model(tmp_path):
    """Acceptance: a small budget split over 2 shard tasks, collected and refit, picks the same
    candidate with the same CV scores and fits the same model as the in-process search."""
    import kfp.local

    from pipelines.pipeline import churn_pipeline

    params = PipelineParams(rows=2000, search_budget=3, cv_folds=2, search_shards=2, seed=11)
    kfp.local.init(runner=kfp.local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path))
    churn_pipeline(**params.as_arguments())
    (run,) = tmp_path.glob("churn-training-*")
    shards = sorted(run.glob("for-loop-*/search-shard-op/executor_output.json"))
    scored = [json.loads(p.read_text())["parameterValues"]["Output"] for p in shards]
    assert [[r["index"] for r in s] for s in scored] == [[0, 1], [2]]  # one task per shard

    train = pd.read_parquet(run / "ingest-op" / "train")
    valid = pd.read_parquet(run / "ingest-op" / "valid")
    in_process, summary = fit(train, params.train_config(), valid=valid)
    fanned = json.loads((run / "train-op" / "search").read_text())
    assert {k: v for k, v in fanned.items() if k != "search_seconds"} == {
        k: v for k, v in summary.items() if k != "search_seconds"
    }
    model = joblib.load(run / "train-op" / "model")
    assert np.array_equal(model.predict_proba(valid), in_process.predict_proba(valid))


def test_compiled_search_branch_fans_out_only_above_one_shard(tmp_path):
    spec, platform = yaml.safe_load_all(compile_pipeline(tmp_path / "p.yaml").read_text())
    assert spec["root"]["inputDefinitions"]["parameters"]["search_shards"]["defaultValue"] == 1
    components = spec["components"]
    branches = components["comp-condition-branches-1"]["dag"]["tasks"]
    conditions = sorted(t["triggerPolicy"]["condition"] for t in branches.values())
    assert conditions == [
        "!(int(inputs.parameter_values['pipelinechannel--search_shards']) > 1)",
        "int(inputs.parameter_values['pipelinechannel--search_shards']) > 1",
    ]
    loop = next(t for c in components.values() for t in c.get("dag", {}).get("tasks", {}).values()
                if "iteratorPolicy" in t)  # fmt: skip
    assert loop["iteratorPolicy"]["parallelismLimit"] == 4
    resources = spec["deploymentSpec"]["executors"]["exec-search-shard-op"]["container"]["resources"]
    assert resources["cpuLimit"] == 1.5
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert executors["exec-search-shard-op"]["configMapAsEnv"][0]["configMapName"] == "churn-platform"
