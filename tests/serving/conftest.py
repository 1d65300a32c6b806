"""Fixtures for the serving tests: a model bundle, held-out rows, and a real server on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from components.schema import FEATURES
from tests.serving.tiny_bundle import tiny_bundle
from tests.support.model_server import start_model_server


@pytest.fixture(scope="session")
def serving_bundle(request, tmp_path_factory):
    """The pipeline's shared ``trained_bundle`` if the suite defines it, else a tiny equivalent."""
    try:
        return request.getfixturevalue("trained_bundle")
    except pytest.FixtureLookupError:
        return tiny_bundle(tmp_path_factory.mktemp("serving-bundle"))


@pytest.fixture(scope="session")
def metadata(serving_bundle) -> dict:
    return json.loads((Path(serving_bundle.bundle_dir) / "metadata.json").read_text())


@pytest.fixture(scope="session")
def test_rows(serving_bundle) -> pd.DataFrame:
    """Twenty held-out rows, raw feature columns only."""
    return (
        pd.read_parquet(serving_bundle.test_path)[[f.name for f in FEATURES]].head(20).reset_index(drop=True)
    )


@pytest.fixture(scope="session")
def onnx_probabilities(serving_bundle, test_rows) -> np.ndarray:
    """P(churn) for ``test_rows`` straight from ONNX Runtime, the reference for every protocol."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(Path(serving_bundle.bundle_dir) / "model.onnx"))
    feeds = {
        f.name: test_rows[[f.name]].to_numpy(dtype=object if f.is_categorical else np.float32)
        for f in FEATURES
    }
    return session.run(["probabilities"], feeds)[0][:, 1]


@pytest.fixture(scope="module")
def server(serving_bundle, tmp_path_factory):
    """The real server: small batch limit and a payload log flushed every second."""
    work = tmp_path_factory.mktemp("serving-server")
    srv = start_model_server(
        serving_bundle.bundle_dir,
        work / "server.log",
        extra_args=["--max_batch_rows", "50", "--payload_log_uri", str(work / "payload"),
                    "--payload_log_flush_seconds", "1"],
    )  # fmt: skip
    srv.payload_dir = work / "payload"
    yield srv
    srv.stop()
