"""The gate compares champion and candidate only on test rows neither model trained on."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pytest

from components.gate import GateConfig
from components.registry.trained_ids import TRAINED_IDS_ARTIFACT, read_trained_ids
from components.schema import ID_COLUMN
from tests.integration.conftest import as_file_lineage
from tests.support.bundles import build_run, register_run

LEAKED_ROWS = 1000


@pytest.fixture(scope="module")
def overfit(tmp_path_factory):
    """A random forest: far better on its own training rows than on new ones."""
    root = tmp_path_factory.mktemp("overfit")
    built = build_run(
        root, model_type="random_forest", search_budget=1, cv_folds=2, n_jobs=1, rows=3000, seed=0
    )
    return as_file_lineage(built, root)


@pytest.fixture(scope="module")
def honest(tmp_path_factory, overfit):
    """A model on other rows whose test split is mostly the overfit champion's training rows.

    What a rerun on a re-split (grown or re-exported) table looks like: most new test rows were
    training rows of the champion.
    """
    leaked = pd.read_parquet(overfit.artifacts.train).sample(LEAKED_ROWS, random_state=0)
    test = pd.concat([leaked, pd.read_parquet(overfit.artifacts.test)], ignore_index=True)
    root = tmp_path_factory.mktemp("honest")
    built = build_run(
        root, model_type="logreg", search_budget=1, cv_folds=2, n_jobs=1, rows=3000, seed=5, test=test
    )
    return as_file_lineage(built, root)


def test_the_champion_is_judged_only_on_rows_it_never_trained_on(overfit, honest, settings, aliases):
    register_run(overfit, settings)  # v1 champion
    fresh = len(pd.read_parquet(overfit.artifacts.test))
    out = register_run(honest, settings, gate=GateConfig(max_regression=0.03))
    gate = out["gate"]
    # on the leaked rows the forest "wins" by ~0.06 AUC; on rows neither saw they are level
    assert gate["verdict"] == "passed", gate["reasons"]
    assert gate["comparison"]["rows"] == out["compared_against_champion"]["rows"] == fresh
    assert gate["comparison"]["excluded"] == {"candidate_trained": 0, "champion_trained": LEAKED_ROWS}
    assert f"{fresh} of {fresh + LEAKED_ROWS} test rows neither model trained on" in out["message"]
    assert aliases(settings)["champion"] == "2"


def test_a_byte_identical_model_passes_on_every_test_row(good, settings, registry):
    first = register_run(good, settings)
    out = register_run(good, settings)  # same data, same seed: same bundle
    rows = len(pd.read_parquet(good.artifacts.test))
    assert out["gate"]["verdict"] == "passed"
    assert out["gate"]["comparison"]["rows"] == rows and out["compared_against_champion"]["delta"] == {
        "roc_auc": 0.0,
        "pr_auc": 0.0,
    }
    # the ids the run trained on are a run artifact, read back as the gate reads them
    trained = len(pd.read_parquet(good.artifacts.train)) + len(pd.read_parquet(good.artifacts.valid))
    logged = registry.client.list_artifacts(first["run_id"], "lineage")
    assert TRAINED_IDS_ARTIFACT in [a.path for a in logged]
    ids = read_trained_ids(registry, first["run_id"], Path(settings.home) / "ids-check")
    assert ids is not None and len(ids) == trained


def test_too_few_unseen_rows_refuses_and_moves_nothing(good, settings, aliases, tmp_path):
    register_run(good, settings)  # v1
    seen = pd.read_parquet(good.artifacts.train)
    fresh = pd.read_parquet(good.artifacts.test).head(150)
    test = pd.concat([seen, fresh], ignore_index=True)
    test.to_parquet(tmp_path / "test.parquet", index=False)
    leaky = replace(good, artifacts=replace(good.artifacts, test=tmp_path / "test.parquet"))
    out = register_run(leaky, settings)
    assert out["gate"]["verdict"] == "refused" and not out["gate"]["passed"]
    assert "only 150 rows neither model trained on < minimum 200" in out["gate"]["reasons"][-1]
    assert out["aliases_moved"] == {} and aliases(settings) == {"champion": "1", "challenger": "1"}
    assert "refused" in out["message"]
    assert test[ID_COLUMN].nunique() == len(test)


def test_a_champion_without_trained_on_ids_is_refused(good, settings, registry, aliases):
    first = register_run(good, settings)
    # a champion registered before ids were recorded: delete its ids artifact from the store
    artifact_dir = Path(urlparse(registry.client.get_run(first["run_id"]).info.artifact_uri).path)
    (artifact_dir / TRAINED_IDS_ARTIFACT).unlink()
    out = register_run(good, settings)
    assert out["gate"]["verdict"] == "refused"
    assert "champion v1 has no record of the rows it trained on" in out["gate"]["reasons"][-1]
    assert aliases(settings) == {"champion": "1", "challenger": "1"}
