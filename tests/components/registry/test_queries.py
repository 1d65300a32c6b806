"""Read-only queries: compare with re-scoring, filters that carry any tag value safely."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from components.registry import RegistryError, compare_versions, list_versions
from tests.support.bundles import register_run


def test_compare_rescores_both_on_given_rows(good, mediocre, settings, tolerant):
    register_run(good, settings)
    register_run(mediocre, settings, gate=tolerant)
    out = compare_versions(settings, "1", "2", data_uri=str(good.artifacts.test))
    assert out["rescored"]["rows"] == len(pd.read_parquet(good.artifacts.test))
    evaluated = [json.loads(run.artifacts.evaluation.read_text()) for run in (good, mediocre)]
    assert out["rescored"]["a"]["roc_auc"] == pytest.approx(evaluated[0]["roc_auc"], abs=1e-6)
    assert out["rescored"]["b"]["roc_auc"] == pytest.approx(evaluated[1]["roc_auc"], abs=1e-6)
    assert out["lineage"]["data_hash"] == [good.lineage.data_hash, mediocre.lineage.data_hash]


def test_tag_filters_quote_user_input(good, settings, registry):
    """A value with a quote used to break (or rewrite) the MLflow filter string it was pasted into."""
    register_run(good, settings)  # v1
    register_run(good, settings)  # v2
    client = registry.client
    client.set_model_version_tag(settings.registered_model, "1", "note", "it's fine")
    client.set_model_version_tag(settings.registered_model, "2", "note", 'say "hi"')
    assert [r["version"] for r in list_versions(settings, tags={"note": "it's fine"})] == ["1"]
    assert [r["version"] for r in list_versions(settings, tags={"note": 'say "hi"'})] == ["2"]
    # an attempt to widen the filter is just a value that matches nothing
    assert list_versions(settings, tags={"note": "x' OR name != 'y"}) == []
    with pytest.raises(RegistryError, match="--tag note="):
        list_versions(settings, tags={"note": "both ' and \""})
    with pytest.raises(RegistryError, match="backtick"):
        list_versions(settings, tags={"no`te": "x"})


def test_compare_takes_the_projects_own_input_format(good, mediocre, settings, tolerant, tmp_path):
    """A Telco-style export (Yes/No labels, any header case, a bad row) is cleaned as ingest cleans it."""
    register_run(good, settings)
    register_run(mediocre, settings, gate=tolerant)
    test = pd.read_parquet(good.artifacts.test)
    raw = test.assign(Churn=test["Churn"].map({1: "Yes", 0: "No"})).rename(columns=str.lower)
    raw.loc[0, "churn"] = "maybe"  # not a label: quarantined, not scored
    raw.to_csv(tmp_path / "export.csv", index=False)
    out = compare_versions(settings, "1", "2", data_uri=str(tmp_path / "export.csv"))
    rescored = out["rescored"]
    assert rescored["rows"] == len(test) - 1 and rescored["quarantined"] == 1
    assert rescored["source_rows"] == len(test)
    # both versions' trained-on ids are known: none of good's test rows were training rows of either
    assert rescored["seen_in_training"] == [0, 0]
    bare = compare_versions(settings, "1", "2", data_uri=str(good.artifacts.test))["rescored"]
    assert rescored["a"]["roc_auc"] == pytest.approx(bare["a"]["roc_auc"], abs=0.01)
    raw.drop(columns=["churn"]).to_csv(tmp_path / "unlabelled.csv", index=False)
    with pytest.raises(Exception, match="label column 'Churn' is missing"):
        compare_versions(settings, "1", "2", data_uri=str(tmp_path / "unlabelled.csv"))
