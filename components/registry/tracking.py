"""Run tracking: one MLflow run per pipeline run, with params, metrics, lineage and artifacts.

The run holds the pipeline parameters, every scalar evaluation metric, the gate's paired scores,
lineage tags, the ONNX bundle, the HTML report, the data profile, metrics.json, gate.json and the
fitted scikit-learn pipeline as an MLflow (LoggedModel) model with signature and input example.
Everything goes through the :class:`~components.registry.client.Registry`'s client, so no
process-global tracking URI or active run is touched (two registrations may run at once).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from components.artifacts import Lineage, RunArtifacts
from components.evaluate import headline
from components.gate import GATE_METRICS, GateResult
from components.registry.client import Registry, RegistryError, already_exists
from components.registry_names import TAG_DATA_LINEAGE, TAG_FEATURE_LINEAGE, data_lineage

log = logging.getLogger(__name__)

# Metrics copied onto each model version as tags (``churn registry list`` shows and filters them).
KEY_METRICS: tuple[str, ...] = (*GATE_METRICS, "log_loss", "brier", "ece", "f1")

# Fixed artifact names: KFP hands artifacts over as extension-less files ("<task>/report"), and
# the MLflow UI picks its viewer by extension.
_NAMED_ARTIFACTS = (("report", "report", "report.html"), ("profile", "profile", "data_profile.json"),
                    ("evaluation", "evaluation", "metrics.json"))  # fmt: skip
_MAX_PARAM_LENGTH = 6000  # MLflow's param value limit
_PARAMS_PER_BATCH = 100  # log_batch takes at most 100 params


def git_commit() -> str:
    """The code's commit: ``CHURN_GIT_COMMIT`` (set in images built by CI), else ``git rev-parse``."""
    explicit = os.environ.get("CHURN_GIT_COMMIT")
    if explicit:
        return explicit
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def lineage_tags(lineage: Lineage) -> dict[str, str]:
    """The lineage tags of a run and its model version (``registry_names.LINEAGE_TAGS``).

    ``kfp_run_id`` falls back to ``$KFP_RUN_ID`` (set by a KFP launcher) when the lineage has none.
    """
    tags = {
        "data_hash": lineage.data_hash,
        "source_uri": lineage.source_uri,
        "git_commit": git_commit(),
        "pipeline_run_id": lineage.pipeline_run_id,
        TAG_DATA_LINEAGE: data_lineage(lineage.source_uri),
    }
    if lineage.feature_lineage:
        tags[TAG_FEATURE_LINEAGE] = lineage.feature_lineage
    kfp_run_id = lineage.kfp_run_id or os.environ.get("KFP_RUN_ID")
    if kfp_run_id:
        tags["kfp_run_id"] = kfp_run_id
    return tags


def read_metrics(path: Path) -> dict[str, float]:
    """The finite scalar metrics of an evaluation's metrics.json; the gate metrics must be there."""
    path = Path(path)
    if not path.is_file():
        raise RegistryError(f"evaluation {path}: no such file")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RegistryError(f"evaluation {path}: not JSON: {exc}") from exc
    missing = [m for m in GATE_METRICS if m not in raw]
    if missing:
        raise RegistryError(f"evaluation {path}: missing metric(s) {missing}")
    return {k: float(v) for k, v in headline(raw).items() if math.isfinite(v)}  # MLflow rejects NaN/inf


def start_run(registry: Registry, tags: Mapping[str, str], run_name: str) -> tuple[str, str]:
    """Create the run (and the experiment if needed); return ``(experiment_id, run_id)``."""
    experiment_id = _ensure_experiment(registry)
    run = registry.client.create_run(experiment_id, run_name=run_name, tags=dict(tags))
    return experiment_id, run.info.run_id


def log_run(
    registry: Registry,
    *,
    experiment_id: str,
    run_id: str,
    params: Mapping,
    metrics: Mapping[str, float],
    gate_result: GateResult,
    artifacts: RunArtifacts,
    X: pd.DataFrame,
):
    """Log params, metrics (plus the gate's paired scores), artifacts and the sklearn model.

    Returns the LoggedModel the model version is created from.
    """
    from mlflow.entities import Metric, Param

    client = registry.client
    now = int(time.time() * 1000)
    items = sorted(_flatten(params).items())
    for start in range(0, len(items), _PARAMS_PER_BATCH):
        batch = items[start : start + _PARAMS_PER_BATCH]
        client.log_batch(run_id, params=[Param(k, v) for k, v in batch])
    all_metrics = dict(metrics)
    for who, scores in (("candidate", gate_result.candidate), ("champion", gate_result.champion or {})):
        for name in GATE_METRICS:
            if name in scores:
                all_metrics[f"gate_{who}_{name}"] = float(scores[name])
    client.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in sorted(all_metrics.items())])
    client.log_artifacts(run_id, str(artifacts.bundle), "bundle")
    with tempfile.TemporaryDirectory(prefix="churn-artifacts-") as tmp:
        for field, folder, name in _NAMED_ARTIFACTS:
            target = Path(tmp) / folder / name
            target.parent.mkdir()
            shutil.copyfile(getattr(artifacts, field), target)
            client.log_artifact(run_id, str(target), folder)
    client.log_dict(run_id, gate_result.to_dict(), "gate/gate.json")
    return _log_sklearn_model(registry, experiment_id, run_id, artifacts.model, X)


def _ensure_experiment(registry: Registry) -> str:
    from mlflow.exceptions import MlflowException

    settings = registry.settings
    exp = registry.client.get_experiment_by_name(settings.experiment)
    if exp is not None:
        return exp.experiment_id
    root = settings.mlflow_artifact_root
    # A remote server decides its own artifact root (proxied or s3://) unless one is given that
    # every client can reach; a local file: folder only makes sense for the embedded default.
    remote = settings.mlflow_tracking_uri.startswith("http")
    location = None if remote and root.startswith("file:") else root
    try:
        return registry.client.create_experiment(settings.experiment, artifact_location=location)
    except MlflowException as exc:  # another run created it a moment ago
        if not already_exists(exc):
            raise
        return registry.client.get_experiment_by_name(settings.experiment).experiment_id


def _flatten(params: Mapping, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = str(value)[:_MAX_PARAM_LENGTH]
    return out


def _log_sklearn_model(
    registry: Registry, experiment_id: str, run_id: str, model_path: Path, X: pd.DataFrame
):
    """Log the fitted pipeline as an MLflow (LoggedModel) model with signature and input example.

    Done through the client rather than ``mlflow.sklearn.log_model`` so no process-global
    tracking URI or active run is touched.
    """
    import joblib
    import mlflow.sklearn
    import sklearn
    from mlflow.entities import LoggedModelOutput
    from mlflow.models import Model, infer_signature

    client = registry.client
    sk_model = joblib.load(model_path)
    sample = X.head(200)
    signature = infer_signature(sample, sk_model.predict_proba(sample))
    # Explicit requirements: MLflow's inference would import-trace the model in a subprocess (s).
    requirements = [f"scikit-learn=={sklearn.__version__}", f"pandas=={pd.__version__}"]
    if "xgboost" in sys.modules:  # joblib.load imported it: the pipeline uses it
        requirements.append(f"xgboost=={sys.modules['xgboost'].__version__}")
    logged = client.create_logged_model(experiment_id, name="sklearn-pipeline", source_run_id=run_id)
    client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
    with tempfile.TemporaryDirectory(prefix="churn-mlmodel-") as tmp:
        local = Path(tmp) / "model"
        mlflow_model = Model(
            artifact_path=logged.artifact_location,
            model_uuid=logged.model_id,
            run_id=run_id,
            model_id=logged.model_id,
        )
        # mlflow warns on every pickle-format save; the format is a deliberate choice here (the
        # served artifact is the ONNX graph; this copy is for lineage and offline analysis).
        quiet = logging.getLogger("mlflow.sklearn")
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            mlflow.sklearn.save_model(
                sk_model,
                str(local),
                mlflow_model=mlflow_model,
                signature=signature,
                input_example=X.head(5),
                pip_requirements=requirements,
                serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
            )
        finally:
            quiet.setLevel(level)
        client.log_model_artifacts(logged.model_id, str(local))
    client.finalize_logged_model(logged.model_id, "READY")
    return logged
