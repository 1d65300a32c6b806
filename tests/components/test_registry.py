"""Registry on the embedded default: SQLite MLflow store + local artifact folder + local model store.

Models are trained by the project's real steps (tests/integration/bundles.py). One MLflow
database per module (creating one costs seconds of migrations); each test registers under its
own model name and model store, so tests stay independent.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pandas as pd
import pytest

from components import audit
from components.config import load_settings
from components.gate import GateConfig, GateInputError, evaluate_gate
from components.model_store import ModelStore, bundle_digest
from components.registry import RegistryError, mlflow_client
from components.registry_admin import compare_versions, list_versions, promote, rollback, show_version
from components.storage import StorageError
from tests.integration.bundles import (  # noqa: F401 (fixtures: good, mediocre, worse)
    good_bundle,
    mediocre_bundle,
    register_bundle,
    worse_bundle,
)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("churn-home")


@pytest.fixture
def settings(home, tmp_path):
    """Local default settings; a fresh registered model and model store per test."""
    return load_settings(
        {
            "CHURN_HOME": str(home),
            "CHURN_REGISTERED_MODEL": f"churn-{uuid.uuid4().hex[:8]}",
            "CHURN_MODEL_STORE_URI": str(tmp_path / "models"),
            "CHURN_IO_RETRIES": "0",
        }
    )


TOLERANT = GateConfig(max_regression=0.1)


def register(bundle, settings, **kwargs):
    return register_bundle(bundle, settings, **kwargs)


def aliases(settings) -> dict:
    aliases = mlflow_client(settings).get_registered_model(settings.registered_model).aliases
    return {alias: str(version) for alias, version in aliases.items()}  # ints from a SQLite store


# ---- gate ---------------------------------------------------------------------------------------


def test_gate_config_rejects_bad_values_naming_the_field():
    with pytest.raises(GateInputError, match="min_pr_auc"):
        GateConfig(min_pr_auc=1.5)
    with pytest.raises(GateInputError, match="max_regression"):
        GateConfig(max_regression=float("nan"))
    with pytest.raises(GateInputError, match="unknown"):
        GateConfig.from_dict({"min_auc": 0.5})


def test_gate_floors_and_regression_tolerance():
    gate = GateConfig(min_roc_auc=0.7, min_pr_auc=0.4, max_regression=0.01)
    champion = {"roc_auc": 0.85, "pr_auc": 0.60}
    assert evaluate_gate({"roc_auc": 0.845, "pr_auc": 0.595}, gate, champion, "1").passed
    result = evaluate_gate({"roc_auc": 0.83, "pr_auc": 0.61}, gate, champion, "1")
    assert not result.passed
    assert len(result.reasons) == 1 and "roc_auc" in result.reasons[0] and "champion v1" in result.reasons[0]
    floors = evaluate_gate({"roc_auc": 0.69, "pr_auc": 0.39}, gate)
    assert not floors.passed and len(floors.reasons) == 2


# ---- register -----------------------------------------------------------------------------------


def test_first_registration_tracks_publishes_and_promotes(good, settings, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MLflow's own default store would be ./mlflow.db: must stay unused
    out = register(good, settings, run_id="run-1")
    assert out["version"] == "1" and out["gate"]["verdict"] == "passed"
    assert out["compared_against_champion"] is None and "No champion yet" in out["message"]
    assert aliases(settings) == {"champion": "1", "challenger": "1"}

    client = mlflow_client(settings)
    mv = client.get_model_version(settings.registered_model, "1")
    assert mv.tags["registration_state"] == "complete"
    assert mv.tags["data_hash"] == good.data_hash and mv.tags["pipeline_run_id"] == "run-1"
    assert len(mv.tags["git_commit"]) == 40
    assert mv.tags["bundle_uri"] == out["bundle_uri"] == str(Path(settings.model_store_uri) / "1")
    digest, _ = bundle_digest(Path(out["bundle_uri"]))
    assert digest == mv.tags["bundle_sha256"] == out["bundle_sha256"]
    published = json.loads((Path(out["bundle_uri"]) / "metadata.json").read_text())
    assert published["model_version"] == "1" and published["registered_model"] == settings.registered_model
    # nothing left in staging once published
    assert not any((Path(settings.model_store_uri) / ".staging").iterdir())

    run = client.get_run(out["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.metrics["roc_auc"] == pytest.approx(good.metrics["roc_auc"])
    assert run.data.tags["source_uri"] == "synthetic://test"
    assert run.data.params["train.model_type"] == "logreg"
    shown = show_version(settings, "1")
    for artifact in (
        "bundle/model.onnx",
        "bundle/metadata.json",
        "report/report.html",
        "profile/data_profile.json",
    ):
        assert artifact in shown["artifacts"]
    # the scikit-learn pipeline is an MLflow model with signature and input example
    import mlflow.artifacts
    from mlflow.models import Model

    assert mv.source.startswith("models:/m-")
    logged = client.get_logged_model(mv.source.removeprefix("models:/"))
    assert logged.source_run_id == out["run_id"]
    mlmodel = Model.load(
        mlflow.artifacts.download_artifacts(f"{logged.artifact_location}/MLmodel", dst_path=str(tmp_path))
    )
    assert "sklearn" in mlmodel.flavors and mlmodel.model_id == logged.model_id
    assert mlmodel.signature is not None and mlmodel.saved_input_example_info is not None
    assert shown["promotion_history"][-1]["alias"] == "champion"
    assert not (tmp_path / "mlflow.db").exists()


def test_second_run_compares_with_champion_on_same_rows(good, settings):
    register(good, settings)
    out = register(good, settings)  # `make run` twice
    compared = out["compared_against_champion"]
    assert compared["champion_version"] == "1" and compared["rows"] == len(pd.read_parquet(good.test_path))
    assert "Compared against champion v1" in out["message"]
    assert compared["candidate"] == compared["champion"]  # same model, same rows: same scores
    assert out["gate"]["passed"], out["gate"]
    assert out["champion_before"] == "1" and out["champion_after"] == "2"
    assert aliases(settings)["champion"] == "2"


def test_worse_model_fails_gate_registers_but_moves_nothing(good, worse, settings):
    register(good, settings)
    before = audit.history(mlflow_client(settings), settings.registered_model)
    out = register(worse, settings)
    assert out["gate"]["verdict"] == "failed" and out["gate"]["reasons"]
    assert out["aliases_moved"] == {} and out["champion_after"] == "1"
    assert aliases(settings) == {"champion": "1", "challenger": "1"}
    mv = mlflow_client(settings).get_model_version(settings.registered_model, out["version"])
    assert (
        mv.tags["gate_verdict"] == "failed" and json.loads(mv.tags["gate_reasons"]) == out["gate"]["reasons"]
    )
    assert audit.history(mlflow_client(settings), settings.registered_model) == before
    rows = list_versions(settings)
    assert [r["version"] for r in rows] == ["2", "1"] and rows[0]["gate"] == "failed"


def test_no_promote_moves_only_challenger(good, settings):
    register(good, settings, promote=False)
    assert aliases(settings) == {"challenger": "1"}


def test_promote_and_rollback_are_audited(good, mediocre, worse, settings):
    register(good, settings)  # v1 champion
    register(mediocre, settings, promote=False, gate=TOLERANT)  # v2 challenger
    register(worse, settings)  # v3 failed gate
    with pytest.raises(RegistryError, match="--reason"):
        promote(settings, "2", reason=" ")
    with pytest.raises(RegistryError, match="quality gate failed"):
        promote(settings, "3", reason="try it")
    with pytest.raises(RegistryError, match="not found"):
        promote(settings, "99", reason="nope")

    moved = promote(settings, "2", reason="canary healthy")
    assert moved["from"] == "1" and moved["to"] == "2" and aliases(settings)["champion"] == "2"
    back = rollback(settings, reason="latency regression")
    assert back["from"] == "2" and back["to"] == "1" and aliases(settings)["champion"] == "1"
    with pytest.raises(RegistryError, match="no previous champion"):
        rollback(settings)

    # history from a fresh client (a restart): every move, in order, with reason and actor
    events = audit.history(mlflow_client(settings), settings.registered_model)
    champion_moves = [
        (e.from_version, e.to_version, e.via, e.reason) for e in events if e.alias == "champion"
    ]
    assert champion_moves == [
        (None, "1", "pipeline register", "gate passed (first champion)"),
        ("1", "2", "cli promote", "canary healthy"),
        ("2", "1", "cli rollback", "latency regression"),
    ]
    assert all(e.actor and e.at for e in events)
    assert [r["version"] for r in list_versions(settings, alias="champion")] == ["1"]
    assert [r["version"] for r in list_versions(settings, metric_filters=["roc_auc<0.6"])] == ["3"]
    assert [r["version"] for r in list_versions(settings, tags={"gate_verdict": "failed"})] == ["3"]


def test_compare_rescores_both_on_given_rows(good, mediocre, settings):
    register(good, settings)
    register(mediocre, settings, gate=TOLERANT)
    out = compare_versions(settings, "1", "2", data_uri=str(good.test_path))
    assert out["rescored"]["rows"] == len(pd.read_parquet(good.test_path))
    assert out["rescored"]["a"]["roc_auc"] == pytest.approx(good.metrics["roc_auc"], abs=1e-6)
    assert out["rescored"]["b"]["roc_auc"] == pytest.approx(mediocre.metrics["roc_auc"], abs=1e-6)
    assert out["lineage"]["data_hash"] == [good.data_hash, mediocre.data_hash]


# ---- failures -----------------------------------------------------------------------------------


def test_bad_inputs_name_the_field(good, settings, tmp_path):
    bad_metrics = tmp_path / "metrics.json"
    bad_metrics.write_text(json.dumps({"roc_auc": 0.8}))
    with pytest.raises(RegistryError, match=r"metrics_path .*pr_auc"):
        register(type(good)(**{**vars(good), "metrics_path": bad_metrics}), settings)
    with pytest.raises(RegistryError, match="report_path"):
        register(type(good)(**{**vars(good), "report_path": tmp_path / "nope.html"}), settings)
    test = pd.read_parquet(good.test_path).drop(columns=["tenure"])
    test.to_parquet(tmp_path / "test.parquet")
    with pytest.raises(GateInputError, match="tenure"):
        register(type(good)(**{**vars(good), "test_path": tmp_path / "test.parquet"}), settings)


def test_publish_failure_leaves_no_version_alias_or_bundle(good, mediocre, settings, monkeypatch):
    register(good, settings)

    def broken_commit(self, staged, version, updates):
        raise StorageError(f"model store {self.root}: disk full (simulated)")

    monkeypatch.setattr(ModelStore, "commit", broken_commit)
    with pytest.raises(StorageError, match="disk full"):
        register(mediocre, settings)
    client = mlflow_client(settings)
    versions = client.search_model_versions(f"name = '{settings.registered_model}'")
    assert [str(v.version) for v in versions] == ["1"]  # the new version was undone
    assert aliases(settings) == {"champion": "1", "challenger": "1"}
    assert sorted(p.name for p in Path(settings.model_store_uri).iterdir()) == [".staging", "1"]
    assert not any((Path(settings.model_store_uri) / ".staging").iterdir())
    failed = client.search_runs(
        [client.get_experiment_by_name(settings.experiment).experiment_id], "attributes.status = 'FAILED'"
    )
    assert failed, "the MLflow run of the failed registration is marked FAILED"
    monkeypatch.undo()
    # re-running succeeds; MLflow never reuses the deleted number, so no path is ever rewritten
    assert register(mediocre, settings, gate=TOLERANT)["version"] == "3"


def test_model_store_paths_are_immutable_and_downloads_verified(good, mediocre, settings, tmp_path):
    store = ModelStore(settings.model_store_uri, settings)
    published = store.commit(store.stage(good.bundle_dir), 7, {"model_version": "7"})
    again = store.commit(store.stage(good.bundle_dir), 7, {"model_version": "7"})
    assert again.sha256 == published.sha256  # same bytes again: an idempotent retry
    with pytest.raises(StorageError, match="immutable"):
        store.commit(store.stage(mediocre.bundle_dir), 7, {"model_version": "7"})
    store.download(published.uri, tmp_path / "copy", published.sha256)
    (Path(published.uri) / "model.onnx").write_bytes(b"tampered")
    with pytest.raises(StorageError, match="does not match"):
        store.download(published.uri, tmp_path / "copy2", published.sha256)


def test_champion_stack_replays_promotions_and_rollbacks():
    def ev(alias, frm, to, via):
        return audit.AuditEvent("t", "me", via, alias, frm, to, "r")

    events = [
        ev("champion", None, "1", "pipeline register"),
        ev("challenger", None, "2", "pipeline register"),
        ev("champion", "1", "2", "cli promote"),
        ev("champion", "2", "3", "pipeline register"),
        ev("champion", "3", "2", "cli rollback"),
    ]
    assert audit.champion_stack(events) == ["1", "2"]


# ---- CLI ----------------------------------------------------------------------------------------


def test_registry_cli_end_to_end(good, worse, settings, monkeypatch, capsys):
    import argparse

    from pipelines.registry_cli import add_registry_parser

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

    register(good, settings)  # v1 champion
    register(worse, settings)  # v2 failed gate
    register(good, settings, promote=False)  # v3 challenger
    listing = churn("registry", "list")
    assert "challenger" in listing and "failed" in listing and good.data_hash[:12] in listing
    assert [
        r["version"] for r in json.loads(churn("registry", "search", "--metric", "roc_auc>=0.8", "--json"))
    ] == [
        "3",
        "1",
    ]
    assert [r["version"] for r in json.loads(churn("registry", "list", "--alias", "champion", "--json"))] == [
        "1"
    ]
    shown = churn("registry", "show", "2")
    assert "gate            failed" in shown and "vs champion v1" in shown and worse.data_hash in shown
    assert "champion: v1 -> v3 (looks good)" in churn("registry", "promote", "3", "--reason", "looks good")
    compared = json.loads(churn("registry", "compare", "1", "3", "--data", str(good.test_path), "--json"))
    assert compared["rescored"]["a"] == compared["rescored"]["b"]  # same model, same rows
    assert "v3 -> v1" in churn("registry", "rollback", "--reason", "drill")
    history = json.loads(churn("registry", "history", "--json"))
    assert [(e["alias"], e["to_version"], e["via"]) for e in history][-2:] == [
        ("champion", "3", "cli promote"),
        ("champion", "1", "cli rollback"),
    ]
    with pytest.raises(SystemExit):
        parser.parse_args(["registry", "promote", "3"])  # --reason is required


def test_unscorable_champion_fails_the_gate_not_the_registration(good, settings):
    first = register(good, settings)
    (Path(first["bundle_uri"]) / "model.onnx").write_bytes(b"corrupted")  # the champion's bundle rots
    out = register(good, settings)
    assert out["version"] == "2" and out["gate"]["verdict"] == "failed"
    assert "champion v1 could not be re-scored" in out["gate"]["reasons"][0]
    assert "does not match registered" in out["gate"]["reasons"][0]  # the hash check caught it
    assert out["compared_against_champion"] is None and "could not be re-scored" in out["message"]
    assert aliases(settings) == {"champion": "1", "challenger": "1"}


def test_bounded_mlflow_sets_bounds_only_while_needed(settings, monkeypatch):
    from components.registry import bounded_mlflow

    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "7")  # set by the user: left alone
    with bounded_mlflow(settings):
        with bounded_mlflow(settings):
            assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"
        assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"  # the outer use still needs it
        assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "7"
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "7"


def test_promotion_lock_is_exclusive_and_a_stale_one_is_broken(settings):
    client = mlflow_client(settings)
    name = settings.registered_model
    second = audit.promotion_lock(client, name, owner="second", timeout_s=0.5)
    first = audit.promotion_lock(client, name, owner="first")
    with first, pytest.raises(audit.RegistryBusyError, match="promotion-lock still held"):
        second.__enter__()
    # a holder that crashed long ago: its lock is broken instead of blocking everyone
    client.create_registered_model(f"{name}{audit.LOCK_SUFFIX}", tags={"owner": "dead", "acquired_at": "0"})
    with audit.promotion_lock(client, name, owner="third", timeout_s=5, stale_after_s=60):
        lock = client.get_registered_model(f"{name}{audit.LOCK_SUFFIX}")
        assert lock.tags["owner"] == "third"
    assert not client.search_registered_models(f"name = '{name}{audit.LOCK_SUFFIX}'")


def test_failed_alias_update_keeps_the_complete_version_and_says_so(good, settings, monkeypatch):
    register(good, settings)

    def unavailable(*args, **kwargs):
        raise audit.RegistryBusyError("promotion lock held (simulated)")

    monkeypatch.setattr(audit, "promotion_lock", unavailable)
    with pytest.raises(audit.RegistryBusyError):
        register(good, settings)
    client = mlflow_client(settings)
    mv = client.get_model_version(settings.registered_model, "2")
    assert mv.tags["registration_state"] == "complete" and "alias update failed" in mv.tags["promotion"]
    assert client.get_run(mv.run_id).info.status == "FAILED"
    assert aliases(settings) == {"champion": "1", "challenger": "1"}
