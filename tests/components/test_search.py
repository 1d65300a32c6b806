"""The shared search (components.search): shard plans, collected records, fan-out = in-process."""

from __future__ import annotations

import json

import numpy as np
import pytest

from components.config import ConfigError
from components.search import SearchError, check_records, from_records, plan, score_candidates, to_records
from components.train import TrainConfig, fit, search_problem


def test_plan_covers_every_candidate_once_in_contiguous_shards():
    assert plan(7, 3) == [
        {"shard": 0, "candidates": [0, 1, 2]},
        {"shard": 1, "candidates": [3, 4]},
        {"shard": 2, "candidates": [5, 6]},
    ]
    assert plan(2, 8) == [{"shard": 0, "candidates": [0]}, {"shard": 1, "candidates": [1]}]  # none empty
    with pytest.raises(ConfigError, match="search_shards must be >= 1"):
        plan(4, 0)


def _record(index):
    return {"index": index, "roc_auc": [0.8, 0.81], "neg_log_loss": [-0.4, -0.41]}


def test_collected_records_must_hold_every_candidate_exactly_once():
    # kfp hands ints inside collected values back as floats, and shards in any order
    assert [r["index"] for r in check_records([[_record(2.0)], [_record(0.0), _record(1.0)]], 3)] == [0, 1, 2]
    with pytest.raises(SearchError, match=r"missing \[1\]"):
        check_records([[_record(0)], [_record(2)]], 3)
    with pytest.raises(SearchError, match="candidate 0 was scored by two shards"):
        check_records([[_record(0)], [_record(0), _record(1)]], 2)
    with pytest.raises(SearchError, match=r"unexpected \[5\]"):
        check_records([[_record(0), _record(5)]], 1)


def test_search_fanned_out_over_shards_equals_the_in_process_search(splits):
    """Shards scored apart, their records through JSON (as KFP passes them) and collected out of
    order give the same results, the same choice and the same refit model as one loop."""
    train, valid, _ = splits
    config = TrainConfig(model_type="xgboost", search_budget=4, cv_folds=2, seed=5)
    in_process, summary = fit(train, config, valid=valid)

    problem = search_problem(train, config)
    shards = [
        json.loads(json.dumps(to_records(score_candidates(problem, s["candidates"], lambda _: None))))
        for s in plan(config.search_budget, 3)
    ]
    records = check_records(shards[::-1], config.search_budget)
    fanned_out, fanned_summary = fit(train, config, searched=from_records(problem, records), valid=valid)

    drop = {"search_seconds"}
    assert {k: v for k, v in fanned_summary.items() if k not in drop} == {
        k: v for k, v in summary.items() if k not in drop
    }
    assert np.array_equal(fanned_out.predict_proba(valid), in_process.predict_proba(valid))
