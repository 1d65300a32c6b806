"""`churn serve`: find the model to serve locally and hand over to the KServe model server."""

from __future__ import annotations

import os
import sys

from components.config import Settings


def champion_bundle_uri(settings: Settings) -> str | None:
    """Where the registry published the current champion's bundle, or None without a champion."""
    from components.registry import CHAMPION, TAG_BUNDLE_URI, alias_version, bounded_mlflow, mlflow_client

    with bounded_mlflow(settings):
        client = mlflow_client(settings)
        version = alias_version(client, settings.registered_model, CHAMPION)
        if version is None:
            return None
        return client.get_model_version(settings.registered_model, version).tags.get(TAG_BUNDLE_URI)


def resolve_model(settings: Settings, explicit: str | None = None) -> str:
    """``explicit`` if given, else the registry's champion, else the newest local run's bundle."""
    if explicit:
        return explicit
    uri = champion_bundle_uri(settings)
    if uri:
        return uri
    latest = settings.runs_dir / "latest" / "model"
    if (latest / "model.onnx").is_file():
        return str(latest.resolve())
    raise FileNotFoundError("no champion in the registry and no local run to serve: run `make run` first")


def exec_server(model_uri: str, http_port: int, grpc_port: int, extra: list[str]) -> None:
    """Replace this process with ``python -m serving`` (kserve's ModelServer) on ``model_uri``."""
    argv = [sys.executable, "-m", "serving", "--model_name", "churn", "--model_dir", model_uri,
            "--http_port", str(http_port), "--grpc_port", str(grpc_port), *extra]  # fmt: skip
    print(f"serving {model_uri} on http://127.0.0.1:{http_port} (gRPC {grpc_port})", flush=True)
    os.execv(sys.executable, argv)
