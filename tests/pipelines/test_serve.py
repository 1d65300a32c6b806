"""`churn serve` without --model: the champion of the latest finished run's registered model."""

import json
import shutil

import pytest

from components.config import load_settings
from components.errors import ChurnError
from pipelines.local import new_run_dir, point_latest
from pipelines.run_status import FAILED, FINISHED, write_status
from pipelines.serve import resolve_model
from tests.support.bundles import register_run


def _finished_run(runs_dir, registered_model: str, bundle_from=None):
    run = new_run_dir(runs_dir)
    (run / "summary.json").write_text(json.dumps({"registry": {"registered_model": registered_model}}))
    if bundle_from is not None:
        shutil.copytree(bundle_from, run / "model")
    write_status(run, FINISHED)
    point_latest(runs_dir, run)
    return run


def test_serves_the_champion_of_the_latest_runs_registered_model(trained_run, tmp_path):
    settings = load_settings({"CHURN_HOME": str(tmp_path / "home")})
    registered = register_run(trained_run, settings)  # a synthetic run: its own registered model
    assert registered["registered_model"] == f"{settings.registered_model}-synthetic"
    with pytest.raises(ChurnError, match="nothing to serve"):
        resolve_model(settings)  # no run yet, and the real-data model has no champion
    _finished_run(settings.runs_dir, registered["registered_model"])
    assert resolve_model(settings) == registered["bundle_uri"]
    assert resolve_model(settings, "models:/x@champion") == "models:/x@champion"


def test_without_a_champion_the_latest_runs_own_bundle_is_served(trained_run, tmp_path):
    settings = load_settings({"CHURN_HOME": str(tmp_path / "home")})
    run = _finished_run(
        settings.runs_dir, settings.registered_model, bundle_from=trained_run.artifacts.bundle
    )
    failed = new_run_dir(settings.runs_dir)  # newer, but failed: never what is served
    write_status(failed, FAILED, error="boom")
    assert resolve_model(settings) == str((run / "model").resolve())
