"""Fixtures of the rollout tests: published copies of the suite's model, a failing and a no-signal one."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import onnx
import pandas as pd
import pytest

from components import bundle
from components.schema import FEATURES

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
