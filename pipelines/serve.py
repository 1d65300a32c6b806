"""`churn serve`: find the model to serve locally and hand over to the KServe model server.

Without ``--model`` it serves the champion of the registered model the latest finished run
registered under (a synthetic demo run: ``<CHURN_REGISTERED_MODEL>-synthetic``; a run on your
own data: ``CHURN_REGISTERED_MODEL``), so ``make run`` then ``make serve`` serves what that run
competed for. Without any finished run, the champion of ``CHURN_REGISTERED_MODEL``; without a
champion, the latest finished run's own bundle.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from pathlib import Path

from components.config import Settings
from components.errors import ChurnError
from components.registry_names import CHAMPION
from pipelines.run_status import FINISHED, read_status


class NothingToServeError(ChurnError, FileNotFoundError):
    """No ``--model``, no champion and no finished local run."""


def latest_finished_run(runs_dir: Path) -> Path | None:
    """The run ``runs/latest`` points at, if it is there and finished."""
    latest = Path(runs_dir) / "latest"
    if not latest.is_dir():
        return None
    status = read_status(latest)
    return latest.resolve() if status and status["state"] == FINISHED else None


def registered_model_to_serve(settings: Settings, run: Path | None) -> str:
    """The registered model of ``run`` (its summary's registry record), else the configured one."""
    summary = run / "summary.json" if run else None
    if summary is None or not summary.is_file():
        return settings.registered_model
    return json.loads(summary.read_text())["registry"]["registered_model"]


def resolve_model(settings: Settings, explicit: str | None = None) -> str:
    """``explicit`` if given, else the champion's bundle URI, else the latest run's bundle folder."""
    from components.registry import alias_bundle_uri  # mlflow is slow to import: only when needed

    if explicit:
        return explicit
    run = latest_finished_run(settings.runs_dir)
    name = registered_model_to_serve(settings, run)
    uri = alias_bundle_uri(replace(settings, registered_model=name), CHAMPION)
    if uri:
        return uri
    if run is not None and (run / "model" / "model.onnx").is_file():
        return str(run / "model")
    raise NothingToServeError(
        f"nothing to serve: {name!r} has no {CHAMPION} at {settings.mlflow_tracking_uri} and "
        f"{settings.runs_dir} has no finished run; run `make run` first or pass --model"
    )


def exec_server(model_uri: str, http_port: int, grpc_port: int, extra: list[str]) -> None:
    """Replace this process with ``python -m serving`` (kserve's ModelServer) on ``model_uri``."""
    argv = [sys.executable, "-m", "serving", "--model_name", "churn", "--model_dir", model_uri,
            "--http_port", str(http_port), "--grpc_port", str(grpc_port), *extra]  # fmt: skip
    print(f"starting the model server for {model_uri} (HTTP port {http_port}, gRPC {grpc_port})", flush=True)
    os.execv(sys.executable, argv)
