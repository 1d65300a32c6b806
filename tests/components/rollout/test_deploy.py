"""The pipeline's deploy step: nothing for a failed gate, a report under kfp.local, the canary
rollout in a cluster (the fake Kubernetes API of tests/support/kube_api.py, the one fake: no
cluster runs here; a real MLflow server and a real Prometheus with no traffic, so the analysis
holds and the step's deadline rolls the canary back)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from components.config import ConfigError
from components.registry import connect, move_alias
from components.registry_names import CHAMPION, TAG_REJECTED, TAG_SERVING_IMAGE_TAG
from components.rollout.deploy import deploy_registered
from components.rollout.driver import RolloutError
from components.rollout.kube import api_client
from components.rollout.plan import RolloutPlan
from tests.support.prometheus_server import start_prometheus

PLAN = RolloutPlan(steps=(10, 100), bake_s=0, ready_timeout_s=5, hold_timeout_s=3600)


def registration(tmp_path, settings, version: str, verdict: str = "passed", champion_after=None):
    path = tmp_path / "registration.json"
    path.write_text(json.dumps({
        "registered_model": settings.registered_model, "version": version,
        "gate": {"verdict": verdict}, "champion_after": champion_after,
    }))  # fmt: skip
    return path


def test_a_failed_gate_deploys_nothing_and_kfp_local_reports(settings, versions, tmp_path):
    (v1,) = versions(1, gate="failed")
    failed = deploy_registered(registration(tmp_path, settings, v1, "failed"), settings, PLAN, timeout_s=1)
    assert (failed["action"], failed["message"]) == ("none", f"gate failed: v{v1} not deployed")
    local = deploy_registered(
        registration(tmp_path, settings, v1, champion_after=v1), settings, PLAN, timeout_s=1
    )
    assert local["action"] == "local" and f"champion is v{v1}" in local["message"]


def test_in_a_cluster_the_step_records_the_image_tag_and_rolls_out(settings, versions, kube, tmp_path):
    v1, v2 = versions(2, image=False)
    with connect(settings, "setup") as registry:
        move_alias(registry, CHAMPION, v1, reason="setup", via="test")
    prometheus = start_prometheus(["127.0.0.1:9"], tmp_path / "prometheus")
    pod = replace(settings, in_cluster=True, image_tag="0.2.0-abcdefabcdef", prometheus_url=prometheus.url)
    lines = []
    try:
        summary = deploy_registered(
            registration(tmp_path, settings, v2), pod, PLAN, timeout_s=3, say=lines.append,
            api=api_client(kube.url, retries=0),
        )  # fmt: skip
    finally:
        prometheus.stop()
    assert (summary["action"], summary["phase"]) == ("rollout", "rolled-back")
    assert "did not finish within its time limit" in summary["message"]
    assert any("canary verdict: HOLD" in line for line in lines)
    first = kube.patches()[0]["spec"]["predictor"]
    assert first["model"]["runtimeVersion"] == "0.2.0-abcdefabcdef" and first["canaryTrafficPercent"] == 10
    with connect(settings, "read") as registry:
        tags = registry.get_version(v2).tags
        assert registry.alias_version(CHAMPION) == v1
    assert tags[TAG_SERVING_IMAGE_TAG] == "0.2.0-abcdefabcdef" and TAG_REJECTED in tags


def test_in_a_cluster_the_step_refuses_what_it_cannot_judge(settings, versions, kube, tmp_path):
    (v1,) = versions(1, image=False)
    pod = replace(settings, in_cluster=True, image_tag=None, prometheus_url="http://127.0.0.1:9")
    with pytest.raises(ConfigError, match="CHURN_IMAGE_TAG not set"):
        deploy_registered(registration(tmp_path, settings, v1), pod, PLAN, timeout_s=1)
    with pytest.raises(RolloutError, match="promote=false"):
        deploy_registered(registration(tmp_path, settings, v1, champion_after=v1), pod, PLAN, timeout_s=1)
    assert kube.patches() == []
