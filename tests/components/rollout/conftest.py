"""Rollout tests: the registry is a real ``mlflow server`` on 127.0.0.1 (one per session), the
Kubernetes API the recording fake of ``tests/support/kube_api.py`` (no cluster can run here).

Each test registers under its own model name. Versions are created the way the register step
leaves them once published (state complete, bundle URI, gate verdict, serving image tag), directly
through MLflow: the register transaction itself is tested in tests/components/registry.
"""

from __future__ import annotations

import copy
import uuid
from pathlib import Path

import pytest
import yaml

from components.config import load_settings
from components.registry import connect
from components.registry_names import (
    STATE_COMPLETE,
    TAG_BUNDLE_URI,
    TAG_GATE,
    TAG_SERVING_IMAGE_TAG,
    TAG_STATE,
)
from tests.support.kube_api import FakeKubeApi
from tests.support.mlflow_server import start_mlflow_server

REPO = Path(__file__).resolve().parents[3]
NAMESPACE, NAME = "churn", "churn"


@pytest.fixture(scope="session")
def rollout_mlflow(tmp_path_factory):
    with start_mlflow_server(tmp_path_factory.mktemp("rollout-mlflow")) as server:
        yield server


@pytest.fixture
def settings(rollout_mlflow, tmp_path):
    return load_settings(
        {
            "CHURN_HOME": str(tmp_path / "home"),
            "MLFLOW_TRACKING_URI": rollout_mlflow.url,
            "CHURN_REGISTERED_MODEL": f"churn-{uuid.uuid4().hex[:8]}",
            "CHURN_MODEL_STORE_URI": "s3://churn-test-models/churn/models",
            "CHURN_IO_RETRIES": "0",
        }
    )


def bundle_uri(version: str) -> str:
    return f"s3://churn-test-models/churn/models/{version}/"


def image_tag(version: str) -> str:
    return f"0.1.0-{int(version):012x}"


@pytest.fixture
def versions(settings):
    """``versions(n, gate="passed", image=True)`` registers n published versions; returns their numbers."""

    def make(count: int, *, gate: str = "passed", image: bool = True) -> list[str]:
        made = []
        with connect(settings, "test versions") as registry:
            client = registry.client
            if not client.search_registered_models(f"name = '{registry.name}'"):
                client.create_registered_model(registry.name)
            for _ in range(count):
                mv = client.create_model_version(registry.name, source="s3://churn-test-models/src/")
                version = str(mv.version)
                tags = {TAG_STATE: STATE_COMPLETE, TAG_BUNDLE_URI: bundle_uri(version), TAG_GATE: gate}
                if image:
                    tags[TAG_SERVING_IMAGE_TAG] = image_tag(version)
                for key, value in tags.items():
                    client.set_model_version_tag(registry.name, version, key, value)
                made.append(version)
        return made

    return make


def base_inference_service(version: str = "1") -> dict:
    """manifests/base/inferenceservice.yaml with its placeholders filled (what an overlay applies)."""
    doc = yaml.safe_load((REPO / "manifests" / "base" / "inferenceservice.yaml").read_text())
    doc = copy.deepcopy(doc)
    model = doc["spec"]["predictor"]["model"]
    model["storageUri"] = bundle_uri(version)
    model["runtimeVersion"] = image_tag(version)
    return doc


@pytest.fixture
def kube():
    """The fake API server holding the environment's InferenceService, serving v1 at 100 %."""
    with FakeKubeApi() as api:
        api.add(base_inference_service("1"))
        yield api
