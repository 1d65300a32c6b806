"""``churn registry ...`` end to end on the embedded default (pipelines/registry_cli.py)."""

from __future__ import annotations

import argparse
import json

import pytest

from pipelines.registry_cli import add_registry_parser
from tests.support.bundles import register_run


def test_registry_cli_end_to_end(good, worse, settings, monkeypatch, capsys):
    for key, value in {
        "CHURN_HOME": str(settings.home),
        "CHURN_REGISTERED_MODEL": settings.registered_model,
        "CHURN_MODEL_STORE_URI": settings.model_store_uri,
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    parser = argparse.ArgumentParser(prog="churn")
    add_registry_parser(parser.add_subparsers(dest="command", required=True))

    def churn(*argv: str) -> str:
        args = parser.parse_args(list(argv))
        assert args.func(args) == 0
        return capsys.readouterr().out

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
