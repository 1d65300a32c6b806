"""Tracking, registration, quality-gated promotion and lineage on MLflow's own model registry.

One pipeline run = one MLflow run (experiment ``Settings.experiment``) with params, every
evaluation metric, lineage tags and artifacts (ONNX bundle, the scikit-learn pipeline as an
MLflow model with signature and input example, the HTML report, the data profile). The
``register`` step then creates a version of ``Settings.registered_model`` and moves aliases:
``challenger`` when the gate passes, ``champion`` for what serves production (MLflow 3 has
no stages). Every alias move is written to the audit trail (:mod:`components.audit`).

Order of work, so that a failure at any point leaves nothing half-done:

1. preflight: MLflow and the model store answer (bounded retries, endpoint named on failure);
2. re-score the candidate bundle and the current champion's published bundle on the *same*
   test rows with ONNX Runtime, and apply the gate (:mod:`components.gate`);
3. log the MLflow run; stage the bundle in the model store (private staging area);
4. create the model version tagged ``registration_state=pending``;
5. publish the bundle to ``<model_store_uri>/<version>/`` (atomic, hash-verified), then tag
   ``bundle_uri`` / ``bundle_sha256`` and ``registration_state=complete``;
6. only then, under the promotion lock, move aliases (compare-and-set on ``champion``).

A failure in 3-5 marks the run FAILED, deletes the new version and its published bundle (best
effort) and raises :class:`RegistryError` naming the endpoint; no alias has moved. A version
left ``pending`` (MLflow itself died before the undo) is never aliased and is shown as
incomplete by ``churn registry list``.

Concurrency (two runs finishing at once): the gate compares against the champion seen at the
start; under the lock the champion is re-read. If it is still the one compared against, the
alias moves. If another run moved it meanwhile, this run re-scores the *new* champion on its own
test rows and re-gates: it moves ``champion`` only if it also beats that one, otherwise it
leaves the alias and says so in its summary and version tags. No alias is ever moved on the
strength of a comparison with a model that is no longer the champion.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from components import audit
from components.config import Settings
from components.gate import GateConfig, GateResult, evaluate_gate, load_labelled, score
from components.model_store import ModelStore, read_bundle_metadata
from components.storage import StorageError

log = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"

# Model-version tags: the contract with serving (bundle_uri, bundle_sha256) and the CLI.
TAG_STATE = "registration_state"
TAG_BUNDLE_URI = "bundle_uri"
TAG_BUNDLE_SHA = "bundle_sha256"
TAG_GATE = "gate_verdict"
TAG_GATE_REASONS = "gate_reasons"
TAG_COMPARED = "compared_against"
TAG_PROMOTION = "promotion"
LINEAGE_TAGS = ("data_hash", "source_uri", "git_commit", "pipeline_run_id", "kfp_run_id")
KEY_METRICS = ("roc_auc", "pr_auc", "log_loss", "brier", "f1")
REQUIRED_METRICS = ("roc_auc", "pr_auc")

Progress = Callable[[str], None]


class RegistryError(RuntimeError):
    """Tracking, registry or model store failed; the message names the endpoint and the step."""


# ---- MLflow client, bounded ---------------------------------------------------------------------


def _endpoint(settings: Settings) -> str:
    uri = settings.mlflow_tracking_uri
    return f"MLflow tracking server {uri}" if uri.startswith("http") else f"MLflow store {uri}"


_BOUND_LOCK = threading.Lock()
_bound_depth = 0
_bound_added: list[str] = []


@contextmanager
def bounded_mlflow(settings: Settings) -> Iterator[None]:
    """Bound MLflow's HTTP retries and timeouts to the project's I/O budget (unless set explicitly).

    MLflow's defaults (7 retries, backoff factor 2, 120 s timeout) turn a dead server into a
    ~4-minute hang; these read the environment on every request, so setting them here works.
    """
    wanted = {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(settings.io_retries),
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(int(max(1, settings.io_timeout_s))),
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",  # an int for mlflow
        # Only used when the client writes s3:// artifacts itself (non-proxied artifact root).
        "AWS_MAX_ATTEMPTS": str(settings.io_retries + 1),
        "AWS_RETRY_MODE": "standard",
        "MLFLOW_S3_ENDPOINT_URL": settings.s3_endpoint_url,
    }
    global _bound_depth
    with _BOUND_LOCK:  # nested or concurrent (threads) uses: the outermost sets and clears
        if _bound_depth == 0:
            _bound_added[:] = [k for k in wanted if k not in os.environ]
            for key in _bound_added:
                os.environ[key] = wanted[key]
        _bound_depth += 1
    try:
        yield
    finally:
        with _BOUND_LOCK:
            _bound_depth -= 1
            if _bound_depth == 0:
                for key in _bound_added:
                    os.environ.pop(key, None)


def mlflow_client(settings: Settings):
    """An ``MlflowClient`` on the configured tracking + registry URI (no global MLflow state)."""
    from mlflow import MlflowClient

    if settings.mlflow_tracking_uri.startswith("sqlite:"):
        settings.home.mkdir(parents=True, exist_ok=True)
    return MlflowClient(tracking_uri=settings.mlflow_tracking_uri, registry_uri=settings.mlflow_tracking_uri)


@contextmanager
def mlflow_errors(settings: Settings, step: str) -> Iterator[None]:
    """Turn any failure talking to MLflow into a :class:`RegistryError` naming endpoint and step."""
    try:
        yield
    except (RegistryError, StorageError, audit.RegistryBusyError):
        raise
    except Exception as exc:  # MlflowException, requests/urllib3 errors, sqlite errors...
        raise RegistryError(f"{_endpoint(settings)}: {step} failed: {exc}") from exc


_GLOBAL_URI_LOCK = threading.Lock()


@contextmanager
def _global_tracking_uri(settings: Settings) -> Iterator[None]:
    """Point MLflow's process-global tracking URI at ours for one call, then restore it (and env).

    mlflow 3.17's database registry store resolves a ``models:/<id>`` version source through
    ``MlflowClient()`` -- the global URI, not the client's (a TODO in its code); without this it
    looks in ``./mlflow.db``. A server resolves it itself, so only local stores need this.
    """
    if settings.mlflow_tracking_uri.startswith("http"):
        yield
        return
    import mlflow
    from mlflow.tracking._tracking_service import utils

    with _GLOBAL_URI_LOCK:
        old_uri, old_env = utils._tracking_uri, os.environ.get("MLFLOW_TRACKING_URI")
        mlflow.set_tracking_uri(settings.mlflow_tracking_uri)
        try:
            yield
        finally:
            mlflow.set_tracking_uri(old_uri)
            os.environ.pop("MLFLOW_TRACKING_URI", None)
            if old_env is not None:
                os.environ["MLFLOW_TRACKING_URI"] = old_env


def preflight(client, settings: Settings) -> None:
    """One cheap call, so a dead server fails here (bounded) before any work is done."""
    with mlflow_errors(settings, "connect"):
        client.search_experiments(max_results=1)


def _is_missing(exc: Exception) -> bool:
    return getattr(exc, "error_code", None) == "RESOURCE_DOES_NOT_EXIST"


def _ensure_experiment(client, settings: Settings) -> str:
    from mlflow.exceptions import MlflowException

    exp = client.get_experiment_by_name(settings.experiment)
    if exp is not None:
        return exp.experiment_id
    root = settings.mlflow_artifact_root
    # A remote server decides its own artifact root (proxied or s3://) unless one is given that
    # every client can reach; a local file: folder only makes sense for the embedded default.
    location = (
        root if not settings.mlflow_tracking_uri.startswith("http") or not root.startswith("file:") else None
    )
    try:
        return client.create_experiment(settings.experiment, artifact_location=location)
    except MlflowException as exc:  # another run created it a moment ago
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        return client.get_experiment_by_name(settings.experiment).experiment_id


def _ensure_registered_model(client, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(name, description="Customer churn classifier (ONNX bundles).")
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise


def alias_version(client, name: str, alias: str) -> str | None:
    """The version ``alias`` points at, or None (also when the model does not exist yet)."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if _is_missing(exc) or exc.error_code == "INVALID_PARAMETER_VALUE":
            return None
        raise


# ---- scoring ------------------------------------------------------------------------------------


def predict_proba_bundle(bundle_dir: Path, frame: pd.DataFrame) -> np.ndarray:
    """P(churn) per row from a bundle's ONNX graph, exactly as serving computes it."""
    from components.export import MODEL_FILE, onnx_predict_proba

    return onnx_predict_proba(Path(bundle_dir) / MODEL_FILE, frame)


def rescore_version(client, settings: Settings, version: str, X: pd.DataFrame, y: np.ndarray, work: Path):
    """Download a registered version's published bundle (hash-checked) and score it on X, y."""
    mv = client.get_model_version(settings.registered_model, version)
    uri = mv.tags.get(TAG_BUNDLE_URI)
    if not uri:
        raise RegistryError(f"{settings.registered_model} v{version} has no {TAG_BUNDLE_URI} tag")
    store = ModelStore(settings.model_store_uri, settings)
    bundle = store.download(uri, work / f"v{version}", mv.tags.get(TAG_BUNDLE_SHA))
    return score(y, predict_proba_bundle(bundle, X))


# ---- lineage helpers ----------------------------------------------------------------------------


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


def _flatten(params: Mapping, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = str(value)[:6000]  # MLflow's param value limit
    return out


def _read_metrics(path: Path) -> dict[str, float]:
    path = Path(path)
    if not path.is_file():
        raise RegistryError(f"metrics_path {path}: no such file")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RegistryError(f"metrics_path {path}: not JSON: {exc}") from exc
    missing = [m for m in REQUIRED_METRICS if m not in raw]
    if missing:
        raise RegistryError(f"metrics_path {path}: missing metric(s) {missing}")
    metrics = {}
    for key, value in raw.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value):
            metrics[key] = float(value)
    return metrics


def _check_inputs(**paths: Path) -> None:
    for field, path in paths.items():
        if path is None or not Path(path).exists():
            raise RegistryError(f"{field}: {path} does not exist")


# ---- run logging --------------------------------------------------------------------------------


def _log_sklearn_model(client, experiment_id: str, run_id: str, model_path: Path, X: pd.DataFrame):
    """Log the fitted pipeline as an MLflow (LoggedModel) model with signature and input example.

    Done through the client rather than ``mlflow.sklearn.log_model`` so no process-global
    tracking URI or active run is touched (the pipeline may run two registrations at once).
    """
    import joblib
    import mlflow.sklearn
    import sklearn
    from mlflow.entities import LoggedModelOutput
    from mlflow.models import Model, infer_signature

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


def _log_run(
    client,
    *,
    run_id: str,
    experiment_id: str,
    params: Mapping,
    metrics: Mapping[str, float],
    gate_result: GateResult,
    paths: Mapping[str, Path],
    X: pd.DataFrame,
):
    from mlflow.entities import Metric, Param

    now = int(time.time() * 1000)
    flat = _flatten(params)
    items = sorted(flat.items())
    for start in range(0, len(items), 100):  # log_batch takes at most 100 params
        client.log_batch(run_id, params=[Param(k, v) for k, v in items[start : start + 100]])
    all_metrics = dict(metrics)
    for who, scores in (("candidate", gate_result.candidate), ("champion", gate_result.champion or {})):
        for name in ("roc_auc", "pr_auc"):
            if name in scores:
                all_metrics[f"gate_{who}_{name}"] = float(scores[name])
    client.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in sorted(all_metrics.items())])
    client.log_artifacts(run_id, str(paths["bundle_dir"]), "bundle")
    # Fixed names: KFP hands artifacts over as extension-less files ("<task>/report"), and the
    # MLflow UI picks its viewer by extension.
    with tempfile.TemporaryDirectory(prefix="churn-artifacts-") as tmp:
        for key, folder, name in (
            ("report_path", "report", "report.html"),
            ("profile_path", "profile", "data_profile.json"),
            ("metrics_path", "evaluation", "metrics.json"),
        ):
            target = Path(tmp) / folder / name
            target.parent.mkdir()
            shutil.copyfile(paths[key], target)
            client.log_artifact(run_id, str(target), folder)
    client.log_dict(run_id, gate_result.to_dict(), "gate/gate.json")
    return _log_sklearn_model(client, experiment_id, run_id, paths["sklearn_model_path"], X)


# ---- the register step --------------------------------------------------------------------------


@dataclass
class _Comparison:
    champion_version: str | None
    gate: GateResult


def _compare(client, settings, X, y, cand_scores, gate, work, progress) -> _Comparison:
    champion = alias_version(client, settings.registered_model, CHAMPION)
    return _Comparison(
        champion, _gate_against(client, settings, champion, cand_scores, X, y, gate, work, progress)
    )


def _gate_against(client, settings, champion, candidate, X, y, gate, work, progress) -> GateResult:
    """Gate ``candidate`` against ``champion`` re-scored on X, y.

    A champion that cannot be re-scored (bundle gone or corrupt, another schema) fails the gate
    with that reason rather than the registration: the version is still recorded, and a human
    can look and ``promote --force``. Never falls back to the champion's stored numbers.
    """
    if champion is None:
        return evaluate_gate(candidate, gate)
    progress(f"re-scoring champion v{champion} on the same {len(y)} test rows")
    try:
        scores = rescore_version(client, settings, champion, X, y, work)
    except Exception as exc:
        log.warning("champion v%s could not be re-scored: %s", champion, exc)
        result = evaluate_gate(candidate, gate)
        reason = f"champion v{champion} could not be re-scored on this test split ({exc})"
        result.passed = False
        result.reasons.append(reason)
        result.checks.append(reason)
        result.champion_version = champion
        return result
    return evaluate_gate(candidate, gate, scores, champion)


def register_model(
    *,
    bundle_dir: Path,
    sklearn_model_path: Path,
    metrics_path: Path,
    report_path: Path,
    profile_path: Path,
    test_path: Path,
    params: dict,
    data_hash: str,
    source_uri: str,
    pipeline_run_id: str,
    gate: GateConfig,
    promote: bool,
    settings: Settings,
    kfp_run_id: str | None = None,
    progress: Progress | None = None,
) -> dict:
    """Track the run, register a model version, publish its bundle and move aliases if earned.

    Returns a JSON-able summary (see ``README`` section "registry"). ``promote`` moves
    ``champion`` as well as ``challenger`` when the gate passes (local runs; on a cluster the
    canary rollout promotes). ``kfp_run_id`` (on a cluster: ``dsl.PIPELINE_JOB_ID_PLACEHOLDER``;
    else ``$KFP_RUN_ID`` if set) becomes a lineage tag. ``progress`` receives one line per stage
    (default: the log).
    """
    say = progress or log.info
    if not isinstance(gate, GateConfig):
        raise RegistryError(f"gate: expected GateConfig, got {type(gate).__name__}")
    if not data_hash:
        raise RegistryError("data_hash: empty")
    _check_inputs(
        bundle_dir=bundle_dir,
        sklearn_model_path=sklearn_model_path,
        metrics_path=metrics_path,
        report_path=report_path,
        profile_path=profile_path,
        test_path=test_path,
    )
    metrics = _read_metrics(metrics_path)
    read_bundle_metadata(bundle_dir)  # fail on a bad bundle before anything is written
    X, y = load_labelled(test_path)
    name = settings.registered_model

    with bounded_mlflow(settings), tempfile.TemporaryDirectory(prefix="churn-register-") as tmp:
        work = Path(tmp)
        client = mlflow_client(settings)
        say(f"registry: connecting to {_endpoint(settings)}; model store {settings.model_store_uri}")
        preflight(client, settings)
        store = ModelStore(settings.model_store_uri, settings)
        store.preflight()

        try:
            cand_scores = score(y, predict_proba_bundle(bundle_dir, X))
        except Exception as exc:  # a graph that does not run on the schema's columns
            raise RegistryError(f"bundle_dir {bundle_dir}: cannot score the test split: {exc}") from exc
        with mlflow_errors(settings, "champion lookup"):
            comparison = _compare(client, settings, X, y, cand_scores, gate, work, say)
        result = comparison.gate
        say(f"gate {result.verdict}: " + "; ".join(result.checks))

        with mlflow_errors(settings, "run setup"):
            experiment_id = _ensure_experiment(client, settings)
            _ensure_registered_model(client, name)
            lineage = {
                "data_hash": data_hash,
                "source_uri": source_uri,
                "git_commit": git_commit(),
                "pipeline_run_id": pipeline_run_id,
            }
            kfp_run_id = kfp_run_id or os.environ.get("KFP_RUN_ID")
            if kfp_run_id:
                lineage["kfp_run_id"] = kfp_run_id
            run = client.create_run(
                experiment_id,
                run_name=f"churn-{pipeline_run_id}",
                tags={**lineage, "mlflow.source.git.commit": lineage["git_commit"], TAG_GATE: result.verdict},
            )
        run_id = run.info.run_id
        version = staged = published = None
        try:
            say(f"logging MLflow run {run_id} (params, metrics, artifacts, sklearn model)")
            with mlflow_errors(settings, f"logging run {run_id}"):
                logged = _log_run(
                    client,
                    run_id=run_id,
                    experiment_id=experiment_id,
                    params=params,
                    metrics=metrics,
                    gate_result=result,
                    paths={
                        "bundle_dir": bundle_dir,
                        "report_path": report_path,
                        "profile_path": profile_path,
                        "metrics_path": metrics_path,
                        "sklearn_model_path": sklearn_model_path,
                    },
                    X=X,
                )
            say(f"staging bundle in {settings.model_store_uri}")
            staged = store.stage(bundle_dir)
            tags = {
                **lineage,
                TAG_STATE: "pending",
                TAG_GATE: result.verdict,
                TAG_GATE_REASONS: json.dumps(result.reasons),
                TAG_COMPARED: comparison.champion_version or "none",
                **{m: f"{metrics[m]:.6f}" for m in KEY_METRICS if m in metrics},
            }
            with mlflow_errors(settings, "create model version"), _global_tracking_uri(settings):
                mv = client.create_model_version(
                    name,
                    source=f"models:/{logged.model_id}",
                    run_id=run_id,
                    tags=tags,
                    model_id=logged.model_id,
                    description=f"gate {result.verdict}; data {data_hash}",
                )
            version = str(mv.version)
            say(f"registered {name} v{version}; publishing bundle")
            published = store.commit(
                staged,
                version,
                {"model_version": version, "registered_model": name, "mlflow_run_id": run_id},
            )
            with mlflow_errors(settings, f"tagging v{version}"):
                client.set_model_version_tag(name, version, TAG_BUNDLE_URI, published.uri)
                client.set_model_version_tag(name, version, TAG_BUNDLE_SHA, published.sha256)
                client.set_model_version_tag(name, version, TAG_STATE, "complete")
                client.set_tag(run_id, "registered_version", version)
        except BaseException as exc:
            _undo(client, store, settings, run_id, version, staged, published, exc)
            raise

        try:
            moves = _promote_after_gate(
                client, settings, version, run_id, comparison, X, y, gate, promote, work, say
            )
        except BaseException as exc:
            # The version is complete and stays (its bundle is published and verified); only
            # the alias moves failed. Say so on the version and the run, best effort.
            note = f"alias update failed: {exc}"
            try:
                client.set_model_version_tag(name, version, TAG_PROMOTION, note)
                client.set_terminated(run_id, "FAILED")
            except Exception as tag_exc:
                log.warning("could not record the failed alias update: %s", tag_exc)
            raise
        with mlflow_errors(settings, f"closing run {run_id}"):
            client.set_terminated(run_id, "FINISHED")
        return _summary(settings, version, run_id, comparison, moves, published)


def _undo(client, store, settings, run_id, version, staged, published, exc) -> None:
    """Best-effort compensation: no version, no published bundle, run marked FAILED."""
    log.error("registration failed (%s); undoing", exc)
    steps = []
    if version is not None:
        steps.append(
            ("delete version", lambda: client.delete_model_version(settings.registered_model, version))
        )
    if version is not None:  # a fresh number: whatever is at its path (even half a copy) is ours
        steps.append(("remove published bundle", lambda: store.remove_version(version)))
    if staged is not None:
        steps.append(("discard staging", lambda: store.discard(staged)))
    steps.append(("mark run failed", lambda: client.set_terminated(run_id, "FAILED")))
    for what, step in steps:
        try:
            step()
        except Exception as undo_exc:  # the original error matters more; log and go on
            log.warning("undo %s: %s", what, undo_exc)


def _promote_after_gate(
    client, settings, version, run_id, comparison, X, y, gate, promote, work, say
) -> dict:
    """Move aliases under the promotion lock; compare-and-set on ``champion`` (module docstring)."""
    name = settings.registered_model
    moves: dict = {"challenger": None, "champion": None, "note": None, "regated_against": None}
    if not comparison.gate.passed:
        moves["note"] = "gate failed: no alias moved"
        return moves
    lock = audit.promotion_lock(client, name, owner=f"run {run_id}")
    with mlflow_errors(settings, "alias update"), lock:
        current = alias_version(client, name, CHAMPION)
        verdict = comparison.gate
        if promote and current != comparison.champion_version:
            # Someone promoted while we were registering: judge us against the new champion.
            say(f"champion moved to v{current} since the gate ran; re-gating against it")
            verdict = _gate_against(client, settings, current, verdict.candidate, X, y, gate, work, say)
            moves["regated_against"] = {"version": current, "gate": verdict.to_dict()}
        before = alias_version(client, name, CHALLENGER)
        if before != version:
            client.set_registered_model_alias(name, CHALLENGER, version)
            audit.record(
                client, name, alias=CHALLENGER, from_version=before, to_version=version,
                reason="quality gate passed", via="pipeline register", run_id=run_id,
            )  # fmt: skip
            moves["challenger"] = {"from": before, "to": version}
        if not promote:
            moves["note"] = "promotion left to the rollout (promote=False)"
        elif not verdict.passed:
            moves["note"] = f"champion moved to v{current} meanwhile and re-gate failed: " + "; ".join(
                verdict.reasons
            )
            client.set_model_version_tag(name, version, TAG_PROMOTION, moves["note"])
        else:
            client.set_registered_model_alias(name, CHAMPION, version)
            reason = (
                f"gate passed vs champion v{current} on the same test rows"
                if current
                else "gate passed (first champion)"
            )
            audit.record(
                client, name, alias=CHAMPION, from_version=current, to_version=version,
                reason=reason, via="pipeline register", run_id=run_id,
            )  # fmt: skip
            client.set_model_version_tag(name, version, TAG_PROMOTION, f"champion ({reason})")
            moves["champion"] = {"from": current, "to": version}
    return moves


def _summary(settings, version, run_id, comparison: _Comparison, moves: dict, published) -> dict:
    result = comparison.gate
    cand = result.candidate
    if comparison.champion_version and result.champion is None:
        compared = None
        message = (
            f"Champion v{comparison.champion_version} could not be re-scored, so no comparison was possible."
        )
    elif comparison.champion_version:
        champ = result.champion
        compared = {
            "champion_version": comparison.champion_version,
            "rows": cand["rows"],
            "candidate": {k: cand[k] for k in ("roc_auc", "pr_auc")},
            "champion": {k: champ[k] for k in ("roc_auc", "pr_auc")},
            "delta": {k: cand[k] - champ[k] for k in ("roc_auc", "pr_auc")},
        }
        message = (
            f"Compared against champion v{comparison.champion_version} re-scored on the same "
            f"{cand['rows']} test rows: ROC AUC {cand['roc_auc']:.4f} (new v{version}) vs "
            f"{champ['roc_auc']:.4f}, PR AUC {cand['pr_auc']:.4f} vs {champ['pr_auc']:.4f}."
        )
    else:
        compared = None
        message = f"No champion yet: v{version} checked against the absolute floors only."
    champion_after = (moves["champion"] or {}).get("to") or comparison.champion_version
    if moves["regated_against"]:
        champion_after = (moves["champion"] or {}).get("to") or moves["regated_against"]["version"]
    message += f" Gate {result.verdict}" + (": " + "; ".join(result.reasons) if result.reasons else "") + "."
    if moves["champion"]:
        before = moves["champion"]["from"]
        message += f" Champion: {f'v{before}' if before else 'none'} -> v{version}."
    elif moves["note"]:
        message += f" {moves['note'][0].upper()}{moves['note'][1:]}."
    return {
        "registered_model": settings.registered_model,
        "version": version,
        "run_id": run_id,
        "tracking_uri": settings.mlflow_tracking_uri,
        "gate": result.to_dict(),
        "compared_against_champion": compared,
        "champion_before": comparison.champion_version,
        "champion_after": champion_after,
        "aliases_moved": {k: moves[k] for k in ("challenger", "champion") if moves[k]},
        "regated_against": moves["regated_against"],
        "note": moves["note"],
        "bundle_uri": published.uri,
        "bundle_sha256": published.sha256,
        "message": message,
    }
