"""The registry on the embedded default: SQLite MLflow store + local artifact folder + local model store.

Models are trained by the project's real steps (the ``good``/``mediocre``/``worse`` session
fixtures of ``tests/integration/conftest.py``, shared with the server tests). One MLflow database
per module (creating one costs seconds of migrations); each test registers under its own model
name and model store, so tests stay independent.
"""

from __future__ import annotations

import argparse
import uuid

import pytest

from components.config import load_settings
from components.gate import GateConfig
from components.registry import connect
from pipelines.registry_cli import add_registry_parser
from tests.integration.conftest import good, mediocre, worse  # noqa: F401 (session fixtures)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("churn-home")


@pytest.fixture
def settings(home, tmp_path):
    """Local default settings; a fresh registered model and model store per test."""
    return load_settings(
        {
            "CHURN_HOME": str(home),
            "CHURN_REGISTERED_MODEL": f"churn-{uuid.uuid4().hex[:8]}",
            "CHURN_MODEL_STORE_URI": str(tmp_path / "models"),
            "CHURN_IO_RETRIES": "0",
        }
    )


@pytest.fixture
def tolerant() -> GateConfig:
    """A gate wide enough for ``mediocre`` to pass against ``good``."""
    return GateConfig(max_regression=0.1)


@pytest.fixture
def aliases():
    """``aliases(settings)`` -> ``{alias: version}`` of the registered model, read afresh."""

    def read(settings) -> dict[str, str]:
        with connect(settings, "read aliases") as registry:
            found = registry.client.get_registered_model(registry.name).aliases
        return {alias: str(version) for alias, version in found.items()}  # ints from a SQLite store

    return read


@pytest.fixture
def registry(settings):
    """A connected :class:`~components.registry.Registry` for direct MLflow reads."""
    with connect(settings, "test") as connected:
        yield connected


@pytest.fixture
def parser(settings, monkeypatch) -> argparse.ArgumentParser:
    """The ``churn`` parser with the registry commands, on the test's settings via the environment."""
    for key, value in {
        "CHURN_HOME": str(settings.home),
        "CHURN_REGISTERED_MODEL": settings.registered_model,
        "CHURN_MODEL_STORE_URI": settings.model_store_uri,
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    parser = argparse.ArgumentParser(prog="churn")
    add_registry_parser(parser.add_subparsers(dest="command", required=True))
    return parser


@pytest.fixture
def churn(parser, capsys):
    """``churn(*argv)`` runs a registry command, expects exit 0 and returns what it printed."""

    def run(*argv: str) -> str:
        args = parser.parse_args(list(argv))
        assert args.func(args) == 0
        return capsys.readouterr().out

    return run
