"""Fixtures for the serving tests: the suite's trained run, held-out rows, and a real server on 127.0.0.1."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from components import bundle
from components.bundle import BundleMetadata
from components.schema import FEATURES
from tests.support.model_server import start_model_server


@pytest.fixture(scope="session")
def bundle_dir(trained_run):
    """The bundle folder of the suite's trained run (``tests/conftest.py``)."""
    return trained_run.artifacts.bundle


@pytest.fixture(scope="session")
def metadata(bundle_dir) -> BundleMetadata:
    return bundle.verify(bundle_dir)


@pytest.fixture(scope="session")
def test_rows(trained_run) -> pd.DataFrame:
    """Twenty held-out rows, raw feature columns only."""
    frame = pd.read_parquet(trained_run.artifacts.test)
    return frame[[f.name for f in FEATURES]].head(20).reset_index(drop=True)


@pytest.fixture(scope="session")
def onnx_probabilities(bundle_dir, test_rows) -> np.ndarray:
    """P(churn) for ``test_rows`` straight from ONNX Runtime, the reference for every protocol."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(bundle_dir / bundle.MODEL_FILE))
    feeds = {
        f.name: test_rows[[f.name]].to_numpy(dtype=object if f.is_categorical else np.float32)
        for f in FEATURES
    }
    return session.run([bundle.PROBABILITIES], feeds)[0][:, bundle.POSITIVE_COLUMN]


@pytest.fixture(scope="module")
def server(bundle_dir, tmp_path_factory):
    """The real server: small batch limit and a payload log flushed every second."""
    work = tmp_path_factory.mktemp("serving-server")
    srv = start_model_server(
        bundle_dir,
        work / "server.log",
        extra_args=["--max_batch_rows", "50", "--payload_log_uri", str(work / "payload"),
                    "--payload_log_flush_seconds", "1"],
    )  # fmt: skip
    srv.payload_dir = work / "payload"
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def generic(bundle_dir, tmp_path_factory):
    """The same server with the lean route off: every request goes through kserve's own route."""
    work = tmp_path_factory.mktemp("serving-generic")
    srv = start_model_server(
        bundle_dir, work / "server.log",
        extra_args=["--max_batch_rows", "50", "--no-lean_infer_route"],
    )  # fmt: skip
    yield srv
    srv.stop()
