"""The bounded client: MLflow's HTTP bounds set only while an operation runs, errors named."""

from __future__ import annotations

import os

import pytest

from components.config import load_settings
from components.registry import RegistryError, connect, is_missing


def test_bounds_are_set_only_while_needed(settings, monkeypatch):
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "7")  # set by the user: left alone
    with connect(settings, "outer"):
        with connect(settings, "inner"):
            assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"
        assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"  # the outer use still needs it
        assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "7"
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "7"


def test_unreachable_server_fails_preflight_naming_endpoint(tmp_path):
    settings = load_settings(
        {"CHURN_HOME": str(tmp_path), "MLFLOW_TRACKING_URI": "http://127.0.0.1:9", "CHURN_IO_RETRIES": "0"}
    )
    failed = r"MLflow tracking server http://127\.0\.0\.1:9: connect failed"
    with pytest.raises(RegistryError, match=failed), connect(settings, "never reached"):
        pass


def test_missing_things_are_recognised_one_way(registry):
    from mlflow.exceptions import MlflowException

    assert registry.alias_version("champion") is None  # no model yet
    with pytest.raises(RegistryError, match="not found"):
        registry.get_version("1")
    with pytest.raises(MlflowException) as raised:
        registry.client.get_registered_model(registry.name)
    assert is_missing(raised.value)
    with pytest.raises(RegistryError, match=r"step x failed"), registry.step("step x"):
        raise ValueError("boom")
