"""Fixtures of the rollout tests.

Analysis and pre-flight: published copies of the suite's model, a failing and a no-signal one.
Driver and deploy step: the registry is a real ``mlflow server`` on 127.0.0.1 (one per session),
the Kubernetes API the recording fake of ``tests/support/kube_api.py`` (no cluster can run here).
Each driver test registers under its own model name; versions are created the way the register
step leaves them once published (state complete, bundle URI, gate verdict, serving image tag),
directly through MLflow: the register transaction itself is tested in tests/components/registry.
"""

from __future__ import annotations

import copy
import hashlib
import uuid
from dataclasses import replace
from pathlib import Path

import onnx
import pandas as pd
import pytest
import yaml

from components import bundle
from components.config import load_settings
from components.registry import connect
from components.registry_names import (
    STATE_COMPLETE,
    TAG_BUNDLE_URI,
    TAG_GATE,
    TAG_SERVING_IMAGE_TAG,
    TAG_STATE,
)
from components.schema import FEATURES
from tests.support.kube_api import FakeKubeApi
from tests.support.mlflow_server import start_mlflow_server

REGISTERED_MODEL = "churn"


def publish(source: Path, target: Path, version: str, onnx_bytes: bytes | None = None) -> Path:
    """Bundle ``source`` as the registry publishes version ``version`` (optionally with another graph)."""
    metadata = bundle.verify(source)
    onnx_bytes = onnx_bytes if onnx_bytes is not None else (source / bundle.MODEL_FILE).read_bytes()
    metadata = replace(metadata, content_sha256=hashlib.sha256(onnx_bytes).hexdigest())
    target.mkdir(parents=True, exist_ok=True)
    bundle.write(target, onnx_bytes, metadata.registered(version, REGISTERED_MODEL, f"run-{version}"))
    return target


def failing_on_batches(source: Path) -> bytes:
    """The graph of ``source`` with its probabilities reshaped to one row: ONNX Runtime fails on > 1 row.

    A real runtime failure of the graph (as a bad converter or opset mismatch gives), not a
    switch in the server: one-row requests still score, larger ones answer 500.
    """
    model = onnx.load(str(source / bundle.MODEL_FILE))
    wanted = bundle.verify(source).outputs.probabilities
    producer = next(n for n in model.graph.node if wanted in n.output)
    producer.output[list(producer.output).index(wanted)] = f"{wanted}_rows"
    shape = onnx.helper.make_tensor("one_row_shape", onnx.TensorProto.INT64, [2], [1, 2])
    model.graph.initializer.append(shape)
    model.graph.node.append(onnx.helper.make_node("Reshape", [f"{wanted}_rows", "one_row_shape"], [wanted]))
    return model.SerializeToString()


@pytest.fixture(scope="session")
def shuffled_run(tmp_path_factory):
    """The suite's model recipe trained on permuted labels: same features, no signal, other scores."""
    from tests.support.bundles import build_run

    # smaller and with a one-candidate search: it only has to answer differently, fast
    return build_run(tmp_path_factory.mktemp("shuffled"), rows=2000, search_budget=1, shuffle_labels=True)


@pytest.fixture(scope="session")
def served_rows(trained_run) -> list[dict]:
    """Held-out rows (raw feature columns) to send as traffic."""
    frame = pd.read_parquet(trained_run.artifacts.test)
    return frame[[f.name for f in FEATURES]].to_dict("records")


@pytest.fixture(scope="session")
def observability_rules(tmp_path_factory) -> Path:
    """manifests/base/observability's alert rules as a Prometheus rule file."""
    from tests.support.observability import write_rule_file

    return write_rule_file(tmp_path_factory.mktemp("rules"))


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
