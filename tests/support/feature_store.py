"""A real Feast store on a Redis online store, filled from a small generated history, and the real
transformer (``python -m churn_transformer``) in front of a predictor: shared by tests and benchmarks."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import requests

from components import feature_store, history
from components.config import Settings, load_settings
from tests.support.model_server import REPO
from tests.support.server_process import ServerProcess, free_port, http_ok


@dataclass(frozen=True)
class FilledStore:
    settings: Settings
    history: history.History
    store: object  # feast.FeatureStore


def fill_store(
    workdir: Path, redis_connection: str, customers: int = 300, months: int = 6, seed: int = 11
) -> FilledStore:
    """Generate a history ending this month, publish it, ``feast apply`` and materialize into Redis
    (the production configuration, with local files for the offline tables)."""
    settings = load_settings({
        "CHURN_HOME": str(workdir / "home"), "CHURN_FEATURE_STORE": "production",
        "CHURN_REDIS_CONNECTION": redis_connection,
    })  # fmt: skip
    hist = history.generate_history(customers, months, seed=seed, start=history.recent_start(months))
    feature_store.publish_history(hist, settings)
    store = feature_store.apply(settings)
    feature_store.materialize(store, hist.snapshots[0] - timedelta(days=1), hist.end + timedelta(days=1))
    return FilledStore(settings, hist, store)


class Transformer:
    """A running ``python -m churn_transformer`` forwarding to a predictor on 127.0.0.1."""

    def __init__(self, log_path: Path):
        self.server = ServerProcess("churn-transformer", log_path)
        self.http_port, self.grpc_port = free_port(), free_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def score(self, ids: list[str]) -> requests.Response:
        return requests.post(f"{self.url}/v1/models/churn:predict", json={"customer_id": ids}, timeout=30)

    def stop(self) -> None:
        self.server.stop(grace_s=10)


def start_transformer(
    settings: Settings, predictor_port: int, log_path: Path, timeout: float = 60
) -> Transformer:
    """Start the transformer on the production feature_repo YAML of ``settings``; wait until ready."""
    transformer = Transformer(log_path)
    command = [
        sys.executable, "-m", "churn_transformer", "--model_name", "churn",
        "--predictor_host", f"127.0.0.1:{predictor_port}",
        "--feature_store_yaml", str(feature_store.config_file(settings)),
        "--http_port", str(transformer.http_port), "--grpc_port", str(transformer.grpc_port),
    ]  # fmt: skip
    ready = lambda: http_ok(f"{transformer.url}/v1/models/churn")  # noqa: E731
    transformer.server.launch(
        command, ready, timeout=timeout, env=feature_store.feast_env(settings), cwd=REPO
    )
    return transformer
