"""The register transaction on the embedded default: track, register, publish, gate, move aliases, undo."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from components.bundle import bundle_digest
from components.gate import GateInputError
from components.model_store import ModelStore
from components.registry import RegistryBusyError, RegistryError, promotion, show_version
from components.registry.audit import history
from components.storage import StorageError
from tests.support.bundles import register_run


def evaluation(run) -> dict:
    return json.loads(run.artifacts.evaluation.read_text())


def test_first_registration_tracks_publishes_and_promotes(
    good, settings, registry, aliases, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)  # MLflow's own default store would be ./mlflow.db: must stay unused
    out = register_run(good, settings, run_id="run-1")
    assert out["version"] == "1" and out["gate"]["verdict"] == "passed"
    assert out["compared_against_champion"] is None and "No champion yet" in out["message"]
    assert aliases(settings) == {"champion": "1", "challenger": "1"}

    client = registry.client
    mv = client.get_model_version(settings.registered_model, "1")
    assert mv.tags["registration_state"] == "complete"
    assert mv.tags["data_hash"] == good.lineage.data_hash and mv.tags["pipeline_run_id"] == "run-1"
    assert len(mv.tags["git_commit"]) == 40
    assert mv.tags["bundle_uri"] == out["bundle_uri"] == str(Path(settings.model_store_uri) / "1")
    digest, files = bundle_digest(Path(out["bundle_uri"]))
    assert digest == mv.tags["bundle_sha256"] == out["bundle_sha256"]
    assert mv.tags["content_sha256"] == files["model.onnx"]  # the model's identity, as a tag too
    published = json.loads((Path(out["bundle_uri"]) / "metadata.json").read_text())
    assert published["registry_version"] == "1" and published["registered_model"] == settings.registered_model
    assert published["mlflow_run_id"] == out["run_id"]
    # nothing left in staging once published
    assert not any((Path(settings.model_store_uri) / ".staging").iterdir())

    run = client.get_run(out["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.metrics["roc_auc"] == pytest.approx(evaluation(good)["roc_auc"])
    assert run.data.tags["source_uri"] == good.lineage.source_uri
    assert run.data.params["model_type"] == "logreg"
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


def test_second_run_compares_with_champion_on_same_rows(good, settings, aliases):
    register_run(good, settings)
    out = register_run(good, settings)  # `make run` twice
    compared = out["compared_against_champion"]
    assert compared["champion_version"] == "1"
    assert compared["rows"] == len(pd.read_parquet(good.artifacts.test))
    assert "Compared against champion v1" in out["message"]
    assert compared["candidate"] == compared["champion"]  # same model, same rows: same scores
    assert out["gate"]["passed"], out["gate"]
    assert out["champion_before"] == "1" and out["champion_after"] == "2"
    assert aliases(settings)["champion"] == "2"


def test_worse_model_fails_gate_registers_but_moves_nothing(good, worse, settings, registry, aliases):
    from components.registry import list_versions

    register_run(good, settings)
    before = history(registry)
    out = register_run(worse, settings)
    assert out["gate"]["verdict"] == "failed" and out["gate"]["reasons"]
    assert out["aliases_moved"] == {} and out["champion_after"] == "1"
    assert aliases(settings) == {"champion": "1", "challenger": "1"}
    mv = registry.client.get_model_version(settings.registered_model, out["version"])
    assert mv.tags["gate_verdict"] == "failed"
    assert json.loads(mv.tags["gate_reasons"]) == out["gate"]["reasons"]
    assert history(registry) == before
    rows = list_versions(settings)
    assert [r["version"] for r in rows] == ["2", "1"] and rows[0]["gate"] == "failed"


def test_no_promote_moves_only_challenger(good, settings, aliases):
    register_run(good, settings, promote=False)
    assert aliases(settings) == {"challenger": "1"}


def test_bad_inputs_name_the_field(good, settings, tmp_path):
    bad_metrics = tmp_path / "metrics.json"
    bad_metrics.write_text(json.dumps({"roc_auc": 0.8}))

    def with_artifacts(**paths):
        return replace(good, artifacts=replace(good.artifacts, **paths))

    with pytest.raises(RegistryError, match=r"evaluation .*pr_auc"):
        register_run(with_artifacts(evaluation=bad_metrics), settings)
    with pytest.raises(RegistryError, match=r"artifacts\.report"):
        register_run(with_artifacts(report=tmp_path / "nope.html"), settings)
    test = pd.read_parquet(good.artifacts.test).drop(columns=["tenure"])
    test.to_parquet(tmp_path / "test.parquet")
    with pytest.raises(GateInputError, match="tenure"):
        register_run(with_artifacts(test=tmp_path / "test.parquet"), settings)


def test_publish_failure_leaves_no_version_alias_or_bundle(
    good, mediocre, settings, registry, aliases, tolerant, monkeypatch
):
    register_run(good, settings)

    def broken_commit(self, staged, metadata):
        raise StorageError(f"model store {self.root}: disk full (simulated)")

    monkeypatch.setattr(ModelStore, "commit", broken_commit)
    with pytest.raises(StorageError, match="disk full"):
        register_run(mediocre, settings)
    client = registry.client
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
    assert register_run(mediocre, settings, gate=tolerant)["version"] == "3"


def test_unscorable_champion_fails_the_gate_not_the_registration(good, settings, aliases):
    first = register_run(good, settings)
    (Path(first["bundle_uri"]) / "model.onnx").write_bytes(b"corrupted")  # the champion's bundle rots
    out = register_run(good, settings)
    assert out["version"] == "2" and out["gate"]["verdict"] == "failed"
    assert "champion v1 could not be re-scored" in out["gate"]["reasons"][0]
    assert "does not match registered" in out["gate"]["reasons"][0]  # the hash check caught it
    assert out["gate"]["champion_version"] == "1" and out["gate"]["champion"] is None
    assert out["compared_against_champion"] is None and "could not be re-scored" in out["message"]
    assert aliases(settings) == {"champion": "1", "challenger": "1"}


def test_failed_alias_update_keeps_the_complete_version_and_says_so(
    good, settings, registry, aliases, monkeypatch
):
    register_run(good, settings)

    def unavailable(*args, **kwargs):
        raise RegistryBusyError("promotion lock held (simulated)")

    monkeypatch.setattr(promotion, "promotion_lock", unavailable)
    with pytest.raises(RegistryBusyError):
        register_run(good, settings)
    mv = registry.client.get_model_version(settings.registered_model, "2")
    assert mv.tags["registration_state"] == "complete" and "alias update failed" in mv.tags["promotion"]
    assert registry.client.get_run(mv.run_id).info.status == "FAILED"
    assert aliases(settings) == {"champion": "1", "challenger": "1"}
