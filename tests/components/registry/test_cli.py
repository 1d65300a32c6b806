"""``churn registry ...`` end to end on the embedded default (pipelines/registry_cli.py)."""

from __future__ import annotations

import json
import time
from dataclasses import replace

import pandas as pd
import pytest

from components.ingest import synthetic_uri
from components.registry import RegistryBusyError
from components.registry.lock import LOCK_SUFFIX
from tests.support.bundles import register_run


def test_registry_cli_end_to_end(good, worse, settings, parser, churn):
    register_run(good, settings)  # v1 champion
    register_run(worse, settings)  # v2 failed gate
    register_run(good, settings, promote=False)  # v3 challenger
    listing = churn("registry", "list")
    assert "challenger" in listing and "failed" in listing and good.lineage.data_hash[:12] in listing
    searched = json.loads(churn("registry", "search", "--metric", "roc_auc>=0.8", "--json"))
    assert [r["version"] for r in searched] == ["3", "1"]
    champions = json.loads(churn("registry", "list", "--alias", "champion", "--json"))
    assert [r["version"] for r in champions] == ["1"]
    shown = churn("registry", "show", "2")
    assert (
        "gate            failed" in shown and "vs champion v1" in shown and worse.lineage.data_hash in shown
    )
    assert "champion: v1 -> v3 (looks good)" in churn("registry", "promote", "3", "--reason", "looks good")
    compared = json.loads(
        churn("registry", "compare", "1", "3", "--data", str(good.artifacts.test), "--json")
    )
    assert compared["rescored"]["a"] == compared["rescored"]["b"]  # same model, same rows
    assert "v3 -> v1" in churn("registry", "rollback", "--reason", "drill")
    history = json.loads(churn("registry", "history", "--json"))
    assert [(e["alias"], e["to_version"], e["via"]) for e in history][-2:] == [
        ("champion", "3", "cli promote"),
        ("champion", "1", "cli rollback"),
    ]
    with pytest.raises(SystemExit):
        parser.parse_args(["registry", "promote", "3"])  # --reason is required


def test_break_lock_and_the_demo_namespace(good, settings, registry, churn, tmp_path):
    register_run(good, settings)  # v1
    register_run(good, settings, promote=False)  # v2
    long_ago = repr(time.time() - 600)
    registry.client.create_registered_model(
        f"{settings.registered_model}{LOCK_SUFFIX}",
        tags={"owner": "cli promote by ana@ci-7", "host": "ci-7", "pid": "4242", "acquired_at": long_ago},
    )
    with pytest.raises(RegistryBusyError, match=r"held by cli promote by ana@ci-7 .*--break-lock"):
        churn("registry", "promote", "2", "--reason", "canary healthy")
    out = churn("registry", "promote", "2", "--reason", "canary healthy", "--break-lock")
    assert "champion: v1 -> v2" in out
    assert "v2 -> v1" in churn("registry", "rollback", "--break-lock")

    demo_run = replace(good, lineage=replace(good.lineage, source_uri=synthetic_uri(3000, 0)))
    register_run(demo_run, settings)
    demo = f"{settings.registered_model}-synthetic"
    assert [r["version"] for r in json.loads(churn("registry", "list", "--json"))] == ["2", "1"]
    assert [r["version"] for r in json.loads(churn("registry", "list", "--model", demo, "--json"))] == ["1"]
    test = pd.read_parquet(good.artifacts.test)
    export = test.assign(Churn=test["Churn"].map({1: "Yes", 0: "No"})).rename(columns=str.upper)
    export.to_csv(tmp_path / "export.csv", index=False)
    table = churn("registry", "compare", "1", "2", "--data", str(tmp_path / "export.csv"))
    assert "rows quarantined" in table and "of them trained on" in table
