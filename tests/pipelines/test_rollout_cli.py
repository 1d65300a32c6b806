"""``churn deploy`` and ``churn rollout`` end to end: the real CLI, a kubeconfig read by the real
``kubernetes`` client, the recording fake Kubernetes API of tests/support/kube_api.py (the one
fake: no cluster can run here; every object it stores validates against the kserve SDK), the
embedded MLflow store, a real Prometheus on 127.0.0.1 and the real analysis of
components/rollout/analysis.py.
"""

from __future__ import annotations

import json
import uuid

import pytest
import yaml

from components.config import load_settings
from components.registry import connect, move_alias
from components.registry_names import (
    CHAMPION,
    STATE_COMPLETE,
    TAG_BUNDLE_URI,
    TAG_GATE,
    TAG_REJECTED,
    TAG_ROLLOUT_VERDICT,
    TAG_SERVING_IMAGE_TAG,
    TAG_STATE,
)
from pipelines.cli import main
from tests.infra import openapi_models
from tests.infra.tools import REPO
from tests.support.kube_api import FakeKubeApi
from tests.support.prometheus_server import start_prometheus

STORE = "s3://churn-dev-models-111122223333/churn/models"  # the dev overlay's model store


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A fresh registered model on the embedded store, with versions 1 (champion) and 2."""
    model = f"churn-{uuid.uuid4().hex[:8]}"
    for key, value in {
        "CHURN_HOME": str(tmp_path / "home"), "CHURN_REGISTERED_MODEL": model, "CHURN_IO_RETRIES": "0",
    }.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    for key in ("MLFLOW_TRACKING_URI", "KUBERNETES_SERVICE_HOST", "CHURN_PROMETHEUS_URL"):
        monkeypatch.delenv(key, raising=False)
    settings = load_settings()
    with connect(settings, "setup") as registry:
        registry.client.create_registered_model(model)
        for version in ("1", "2"):
            registry.client.create_model_version(model, source=f"{STORE}/{version}/")
            for key, value in {
                TAG_STATE: STATE_COMPLETE, TAG_BUNDLE_URI: f"{STORE}/{version}/", TAG_GATE: "passed",
                TAG_SERVING_IMAGE_TAG: f"0.1.0-{version * 12}",
            }.items():  # fmt: skip
                registry.client.set_model_version_tag(model, version, key, value)
        move_alias(registry, CHAMPION, "1", reason="setup", via="test")
    return settings


def kubeconfig(tmp_path, monkeypatch, server: str, cluster: str = "churn-dev") -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "ops",
        "clusters": [{"name": cluster, "cluster": {"server": server}}],
        "users": [{"name": "ops", "user": {"token": "test-token"}}],
        "contexts": [{"name": "ops", "context": {"cluster": cluster, "user": "ops"}}],
    }))  # fmt: skip
    monkeypatch.setenv("KUBECONFIG", str(path))


@pytest.fixture
def kube(tmp_path, monkeypatch):
    docs = rendered_dev_overlay()
    isvc = next(d for d in docs if d["kind"] == "InferenceService")
    isvc["spec"]["predictor"]["model"].update(storageUri=f"{STORE}/1/", runtimeVersion="0.1.0-" + "1" * 12)
    with FakeKubeApi() as api:
        api.add(isvc)
        kubeconfig(tmp_path, monkeypatch, api.url)
        yield api


def rendered_dev_overlay() -> list[dict]:
    from components.rollout.render import build_overlay

    return build_overlay(REPO / "manifests", "dev")


def churn(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_render_prints_the_overlay_for_a_registry_version(env, capsys):
    code, out, err = churn(capsys, "deploy", "render", "--env", "dev", "--version", "2", "--canary", "10",
                           "--manifests", str(REPO / "manifests"))  # fmt: skip
    assert code == 0, err
    docs = [d for d in yaml.safe_load_all(out) if d]
    isvc = next(d for d in docs if d["kind"] == "InferenceService")
    predictor = isvc["spec"]["predictor"]
    assert predictor["model"]["storageUri"] == f"{STORE}/2/"
    assert predictor["model"]["runtimeVersion"] == "0.1.0-" + "2" * 12
    assert predictor["canaryTrafficPercent"] == 10
    runtime = next(d for d in docs if d["kind"] == "ServingRuntime")
    assert runtime["spec"]["containers"][0]["image"].endswith(":0.1.0-" + "2" * 12)
    for doc in docs:
        model = openapi_models.model_for(doc)
        if model:
            assert openapi_models.errors(doc, model) == [], doc["kind"]
    assert len(docs) == len(rendered_dev_overlay())


def test_render_refuses_what_the_registry_cannot_vouch_for(env, capsys):
    with connect(env, "untag") as registry:
        registry.client.delete_model_version_tag(env.registered_model, "2", TAG_SERVING_IMAGE_TAG)
        registry.client.set_model_version_tag(env.registered_model, "1", TAG_BUNDLE_URI, "s3://elsewhere/1/")
    code, _, err = churn(capsys, "deploy", "render", "--env", "dev", "--version", "2")
    assert code == 1 and "no serving_image_tag tag" in err.strip().splitlines()[-1]
    code, _, err = churn(capsys, "deploy", "render", "--env", "dev", "--version", "1")
    assert code == 1 and "not in this environment's model store" in err
    code, _, err = churn(capsys, "deploy", "render", "--env", "dev", "--version", "1", "--canary", "100")
    assert code == 1 and "--canary" in err


def test_release_env_is_written_from_the_registry(env, capsys, tmp_path):
    import shutil

    manifests = tmp_path / "manifests"
    shutil.copytree(REPO / "manifests", manifests)
    code, out, err = churn(capsys, "deploy", "release-env", "--env", "dev", "--version", "2",
                           "--mlflow-image-tag", "3.17.2", "--manifests", str(manifests))  # fmt: skip
    assert code == 0, err
    assert out.startswith(f"wrote {manifests / 'overlays' / 'dev' / 'release.env'}: v2")
    text = (manifests / "overlays" / "dev" / "release.env").read_text()
    assert "MODEL_VERSION=2\n" in text and f"SERVING_IMAGE_TAG=0.1.0-{'2' * 12}\n" in text


def test_a_rollout_with_no_traffic_holds_then_rolls_back(env, kube, capsys, tmp_path):
    """No request reaches either version: the real analysis says hold (naming the counts it waits
    for), never promote; past the hold timeout the driver rolls back."""
    prometheus = start_prometheus(["127.0.0.1:9"], tmp_path / "prometheus")
    try:
        code, out, err = churn(capsys, "rollout", "start", "--env", "dev", "--version", "2",
                               "--prometheus-url", prometheus.url, "--bake-minutes", "0",
                               "--ready-timeout-minutes", "0", "--hold-timeout-minutes", "0")  # fmt: skip
    finally:
        prometheus.stop()
    assert code == 0, err
    assert "canary verdict: HOLD" in out
    assert (
        "- error rate (5xx), ONNX Runtime failures: waiting: stable has 0 of 200 requests, canary has "
        "0 of 200 requests" in out
    ), out
    assert (
        "- p95 latency (s), p99 latency (s): waiting: stable has 0 of 200 answered (2xx) requests, "
        "canary has 0 of 200 answered (2xx) requests" in out
    ), out
    assert out.strip().splitlines()[-1].startswith("v2: rolled-back (held for")
    with connect(env, "read") as registry:
        tags = registry.get_version("2").tags
        assert registry.alias_version(CHAMPION) == "1"
    assert json.loads(tags[TAG_ROLLOUT_VERDICT])["decision"] == "hold"
    assert TAG_REJECTED in tags
    assert kube.get("churn", "churn")["spec"]["predictor"]["canaryTrafficPercent"] == 0

    code, out, err = churn(capsys, "rollout", "status", "--env", "dev")
    assert code == 0, err
    assert "rolled-back" in out and "canary verdict: HOLD" in out and "traffic         100 %" in out


def test_manual_promote_and_a_wrong_cluster(env, kube, capsys, tmp_path, monkeypatch):
    kube.cut(1)  # the driver "dies" right after the first patch: 10 % on v2
    code, _, err = churn(capsys, "rollout", "start", "--env", "dev", "--version", "2",
                         "--prometheus-url", "http://127.0.0.1:9")  # fmt: skip
    assert code == 1 and "unreachable" in err
    kube.cut(None)
    code, _, err = churn(capsys, "rollout", "promote", "--env", "dev", "--version", "3", "--reason", "x")
    assert code == 1 and "--version 3: the rollout recorded is of v2" in err
    code, out, err = churn(capsys, "rollout", "promote", "--env", "dev", "--version", "2",
                           "--reason", "dashboards look right")  # fmt: skip
    assert code == 0, err
    assert out.strip() == "v2: promoted (manual promote: dashboards look right)"
    with connect(env, "read") as registry:
        assert registry.alias_version(CHAMPION) == "2"

    kubeconfig(
        tmp_path, monkeypatch, kube.url, cluster="arn:aws:eks:eu-west-1:111122223333:cluster/churn-prod"
    )
    code, _, err = churn(capsys, "rollout", "status", "--env", "dev")
    assert code == 1 and "not churn-dev" in err and "make kubeconfig ENV=dev" in err
