"""A registration killed (SIGKILL) at each phase is closed by ``churn registry gc`` or by the next run."""

from __future__ import annotations

import multiprocessing
import signal
from pathlib import Path

import pytest

from components.bundle import bundle_digest
from components.registry.cleanup import NO_ALIAS_MOVED, collect_garbage
from tests.integration.workers import register_and_die
from tests.support.bundles import register_run

# marker (a progress line of the register step) -> what gc must make of the version it left
PHASES = {
    "logging MLflow run": None,  # run created, nothing registered yet
    "creating the model version": None,  # bundle staged, no version yet
    "publishing bundle": "failed",  # version pending, bundle only staged
    "marking it complete": "complete",  # bundle published, version still pending
    "moving aliases": "complete",  # version complete, run still RUNNING, no alias moved
}


def child_env(settings) -> dict[str, str]:
    return {
        "CHURN_HOME": str(settings.home),
        "CHURN_REGISTERED_MODEL": settings.registered_model,
        "CHURN_MODEL_STORE_URI": settings.model_store_uri,
        "CHURN_IO_RETRIES": "0",
    }


def kill_registration_at(settings, run, marker: str) -> None:
    child = multiprocessing.get_context("spawn").Process(
        target=register_and_die, args=(child_env(settings), run, marker)
    )
    child.start()
    child.join(timeout=300)  # joined: the pid is reaped, so the holder is provably gone
    assert child.exitcode == -signal.SIGKILL, f"child ended with {child.exitcode}, not killed at {marker!r}"


def runs_by_status(registry, settings) -> dict[str, int]:
    experiment = registry.client.get_experiment_by_name(settings.experiment)
    counts: dict[str, int] = {}
    for run in registry.client.search_runs(
        [experiment.experiment_id], f"tags.`churn.registered_model` = '{registry.name}'"
    ):
        counts[run.info.status] = counts.get(run.info.status, 0) + 1
    return counts


@pytest.mark.parametrize("marker", list(PHASES))
def test_gc_closes_a_registration_killed_at_each_phase(marker, good, settings, registry, aliases):
    kill_registration_at(settings, good, marker)
    assert runs_by_status(registry, settings) == {"RUNNING": 1}  # what the kill left

    done = collect_garbage(settings)
    assert [r["action"] for r in done["runs"]] == ["marked FAILED"] and "is gone" in done["runs"][0]["why"]
    assert runs_by_status(registry, settings) == {"FAILED": 1}
    store = Path(settings.model_store_uri)
    assert list((store / ".staging").glob("*")) == []  # no staged bundle left
    versions = registry.client.search_model_versions(f"name = '{settings.registered_model}'")
    expected = PHASES[marker]
    if expected is None:
        assert versions == [] and done["versions"] == []
        return
    (mv,) = versions
    assert mv.tags["registration_state"] == expected
    if expected == "failed":
        assert not (store / "1").exists() and done["versions"][0]["action"] == "marked failed"
    else:
        assert mv.tags["bundle_uri"] == str(store / "1")
        assert bundle_digest(store / "1")[0] == mv.tags["bundle_sha256"]
        assert mv.tags["promotion"] == NO_ALIAS_MOVED
    assert aliases(settings) == {}  # a killed registration never moves an alias afterwards
    assert collect_garbage(settings) == {"versions": [], "runs": [], "left": []}  # nothing left to do


def test_the_next_run_closes_what_a_killed_one_left(good, settings, registry, aliases):
    kill_registration_at(settings, good, "publishing bundle")
    out = register_run(good, settings)
    assert out["version"] == "2" and out["champion_after"] == "2"
    first = registry.client.get_model_version(settings.registered_model, "1")
    assert first.tags["registration_state"] == "failed"
    assert runs_by_status(registry, settings) == {"FAILED": 1, "FINISHED": 1}
    assert aliases(settings) == {"champion": "2", "challenger": "2"}


def test_a_registration_that_may_still_run_is_left_alone(good, settings, registry):
    """A pending version whose holder is on another host is not touched unless --older-than says so."""
    kill_registration_at(settings, good, "publishing bundle")
    experiment = registry.client.get_experiment_by_name(settings.experiment)
    (run,) = registry.client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'")
    registry.client.set_tag(run.info.run_id, "churn.host", "another-host")
    done = collect_garbage(settings)
    assert done["versions"] == [] and done["runs"] == [] and "may still be running" in done["left"][0]
    forced = collect_garbage(settings, older_than_s=0)
    assert [v["action"] for v in forced["versions"]] == ["marked failed"] and "older-than" in forced[
        "versions"
    ][0]["why"]


def test_churn_registry_gc_says_what_it_closed(good, settings, churn):
    kill_registration_at(settings, good, "publishing bundle")
    out = churn("registry", "gc")
    assert f"{settings.registered_model} v1: marked failed (its process (pid" in out and "is gone" in out
    assert "MLflow run" in out and "marked FAILED" in out
    assert churn("registry", "gc") == "nothing to clean up\n"
