"""One incident, one retrain: the claim record in a real MLflow store (SQLite), across processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from components import retrain_claims
from components.config import load_settings
from components.params import PipelineParams
from components.registry.holder import Holder
from components.retrain import MonitorSignals, RetrainPolicy, trigger_retrain

REPO = Path(__file__).resolve().parents[2]
DRIFTED = ("psi MonthlyCharges 0.41 >= 0.25",)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("retrain-home")


@pytest.fixture
def env(home) -> dict[str, str]:
    return {
        "CHURN_HOME": str(home),
        "CHURN_REGISTERED_MODEL": f"churn-{uuid.uuid4().hex[:8]}",
        "CHURN_IO_RETRIES": "0",
    }


@pytest.fixture
def settings(env):
    return load_settings(env)


def signals(settings, **changes) -> MonitorSignals:
    base = {
        "registered_model": settings.registered_model, "model_version": "1",
        "window_start": "2026-12-01T00:00:00Z", "window_end": "2026-12-01T12:00:00Z", "rows": 5000,
        "enough_data": True, "alerts": DRIFTED,
    }  # fmt: skip
    return MonitorSignals(**{**base, **changes})


class Recorder:
    """A submitter that records what it was asked to start."""

    def __init__(self, fail: bool = False):
        self.calls: list[tuple[PipelineParams, str]] = []
        self.fail = fail

    def __call__(self, params: PipelineParams, run_name: str) -> dict:
        self.calls.append((params, run_name))
        if self.fail:
            raise ConnectionError("KFP server http://kfp.invalid: refused")
        return {"id": f"run-{len(self.calls)}"}


PARAMS = PipelineParams(data_uri="fresh.csv")


def test_one_incident_submits_once_and_records_why(settings):
    submit = Recorder()
    first = trigger_retrain(signals(settings), RetrainPolicy(), PARAMS, settings, submit)
    assert first.action == "submitted" and len(submit.calls) == 1
    assert submit.calls[0][1] == f"retrain-drift-{first.key[:12]}"
    # the monitor runs again a few minutes later: same incident, nothing submitted
    again = trigger_retrain(
        signals(settings, window_end="2026-12-01T12:05:00Z"), RetrainPolicy(), PARAMS, settings, submit
    )
    assert again.action == "skipped" and again.key == first.key and "already claimed" in again.message
    assert len(submit.calls) == 1
    (record,) = retrain_claims.list_records(settings, settings.registered_model)
    assert (record.key, record.kind, record.status, record.submitted) == (
        first.key,
        "drift",
        "submitted",
        {"id": "run-1"},
    )
    assert "psi MonthlyCharges" in record.reason and record.window.endswith("2026-12-01T12:00:00Z")


def test_a_new_incident_inside_the_cooldown_waits(settings):
    submit = Recorder()
    trigger_retrain(signals(settings), RetrainPolicy(cooldown_s=3600), PARAMS, settings, submit)
    later = signals(settings, window_end="2026-12-01T15:00:00Z", estimated_auc=0.6)  # another bucket and kind
    outcome = trigger_retrain(later, RetrainPolicy(cooldown_s=3600), PARAMS, settings, submit)
    assert outcome.action == "skipped" and outcome.message.startswith("in cooldown: a retrain (drift")
    assert len(submit.calls) == 1
    # once the cooldown has passed the new incident starts its own retrain
    outcome = trigger_retrain(later, RetrainPolicy(cooldown_s=0.5), PARAMS, settings, submit)
    assert outcome.action == "skipped"  # 0.5 s have not passed yet...
    time.sleep(0.6)
    assert (
        trigger_retrain(later, RetrainPolicy(cooldown_s=0.5), PARAMS, settings, submit).action == "submitted"
    )


def test_a_failed_submission_releases_the_incident(settings):
    with pytest.raises(ConnectionError, match="refused"):
        trigger_retrain(signals(settings), RetrainPolicy(), PARAMS, settings, Recorder(fail=True))
    (record,) = retrain_claims.list_records(settings, settings.registered_model)
    assert record.status == "failed" and "ConnectionError: KFP server" in record.error
    submit = Recorder()
    assert trigger_retrain(signals(settings), RetrainPolicy(), PARAMS, settings, submit).action == "submitted"


def test_a_claim_whose_process_died_before_submitting_does_not_stand(settings):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    record = retrain_claims.claim(
        settings, signals(settings), _Drift(), "k" * 32, 3600, data_uri="fresh.csv", owner="test"
    )
    # rewrite the holder as the dead process: it claimed and vanished
    from components.registry.client import connect

    with connect(settings, "plant") as registry:
        for name, value in Holder(Holder.current().host, dead.pid).tags(retrain_claims.HOLDER_PREFIX).items():
            registry.client.set_tag(record.record_id, name, value)
    assert (
        trigger_retrain(signals(settings), RetrainPolicy(), PARAMS, settings, Recorder()).action
        == "submitted"
    )


class _Drift:
    kind, reason = "drift", "planted"


def test_no_decision_means_no_record(settings):
    quiet = trigger_retrain(signals(settings, alerts=()), RetrainPolicy(), PARAMS, settings, Recorder())
    assert quiet.action == "none" and retrain_claims.list_records(settings, settings.registered_model) == []


CHILD = """
import json, sys, time
from components.config import load_settings
from components.params import PipelineParams
from components.retrain import MonitorSignals, RetrainPolicy, trigger_retrain
env, start = json.loads(sys.argv[1]), float(sys.argv[2])
settings = load_settings(env)
signals = MonitorSignals(settings.registered_model, "1", "2026-12-01T00:00:00Z", sys.argv[3], 5000, True,
                         ("psi MonthlyCharges 0.41 >= 0.25",))
while time.time() < start:
    time.sleep(0.005)
outcome = trigger_retrain(signals, RetrainPolicy(), PipelineParams(data_uri="fresh.csv"), settings,
                          lambda params, name: {"id": name})
print(json.dumps(outcome.to_dict()))
"""


def test_monitors_racing_in_separate_processes_start_one_retrain(env, settings):
    """Four processes decide on the same incident at the same instant (their windows end minutes
    apart): exactly one claims and submits, three see its claim."""
    start = time.time() + 8  # every child has imported mlflow by then
    ends = ["2026-12-01T12:00:00Z", "2026-12-01T12:01:00Z", "2026-12-01T12:02:00Z", "2026-12-01T12:03:00Z"]
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, json.dumps(env), repr(start), end],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env={**os.environ, **env},
        )
        for end in ends
    ]
    outcomes = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err[-2000:]
        outcomes.append(json.loads(out.splitlines()[-1]))
    assert sorted(o["action"] for o in outcomes) == ["skipped", "skipped", "skipped", "submitted"]
    assert len({o["key"] for o in outcomes}) == 1
    records = retrain_claims.list_records(settings, settings.registered_model)
    assert [r.status for r in records] == ["submitted"]


def test_records_of_another_model_are_not_counted(settings):
    other = replace(settings, registered_model=settings.registered_model + "-other")
    trigger_retrain(signals(other), RetrainPolicy(), PARAMS, other, Recorder())
    assert (
        trigger_retrain(signals(settings), RetrainPolicy(), PARAMS, settings, Recorder()).action
        == "submitted"
    )
