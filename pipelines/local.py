"""Run the pipeline on this machine under ``kfp.local`` and gather its outputs in one folder.

The run folder (``$CHURN_HOME/runs/<UTC time>-<random>/`` unless ``--out`` says otherwise) uses
the layout of :class:`components.artifacts.RunArtifacts` for what the pipeline returns (metrics,
report, model bundle, data profile, quarantine, registration), plus ``summary.json`` (what
``churn run`` printed), ``status.json`` (:mod:`pipelines.run_status`), ``kfp.log`` (all of
kfp.local's output, :mod:`pipelines.run_log`) and ``kfp/`` (kfp.local's own pipeline root: every
task's artifacts and executor output). ``docs/pipeline.md`` lists each file.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TextIO

from components import bundle
from components.artifacts import RunArtifacts
from components.errors import ChurnError
from components.params import PipelineParams
from components.storage import atomic_path
from pipelines.run_log import kfp_output_to_log, task_failure
from pipelines.run_status import FAILED, FINISHED, INTERRUPTED, RUNNING, require_state, write_status

# The pipeline's outputs (see pipelines.pipeline.PipelineOutputs), named like RunArtifacts fields.
COLLECTED: tuple[str, ...] = ("evaluation", "report", "bundle", "profile", "quarantine", "registration")
SUMMARY_METRICS = (
    "roc_auc", "oracle_roc_auc", "pr_auc", "log_loss", "brier", "threshold", "threshold_max_f1",
    "precision", "recall", "f1", "expected_profit", "profit_per_customer",
)  # fmt: skip
# Ingest's summary keys copied into summary.json: the quarantine counts add up to `quarantined`.
SUMMARY_DATA = (
    "source_uri", "csv", "data_hash", "rows", "quarantined", "invalid", "duplicates", "duplicate_ids",
    "label_conflicts", "splits", "warnings",
)  # fmt: skip


class RunFolderError(ChurnError, FileExistsError):
    """The run folder asked for already holds something: a run never mixes into another's files."""


LOG_FILE = "kfp.log"


def new_run_dir(runs_dir: Path) -> Path:
    """Create and return a new, empty run folder ``<UTC time>-<random>`` under ``runs_dir``.

    The random part keeps runs started in the same second apart; creating the folder is the
    claim (``mkdir`` fails if it exists), so two processes never share one.
    """
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    while True:
        path = runs_dir / f"{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue


def run_local(
    params: PipelineParams, out_dir: Path, *, verbose: bool = False, console: TextIO | None = None
) -> dict:
    """Run the whole pipeline locally; return the run summary (also written to summary.json).

    ``status.json`` says ``running`` from the start and ``finished``, ``failed`` or
    ``interrupted`` at the end. Progress goes to ``console`` (default stdout), kfp.local's own
    output to ``kfp.log`` (and to the console too when ``verbose``). A failed step raises a
    :class:`~components.errors.ChurnError` carrying the step's own message.
    """
    import kfp.local

    from pipelines.pipeline import churn_pipeline

    out_dir = Path(out_dir).resolve()
    if out_dir.exists() and any(out_dir.iterdir()):
        raise RunFolderError(f"--out {out_dir} exists and is not empty: pick a new folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_status(out_dir, RUNNING)
    log_path = out_dir / LOG_FILE
    try:
        with kfp_output_to_log(log_path, console or sys.stdout, verbose) as output:
            kfp.local.init(
                runner=kfp.local.SubprocessRunner(use_venv=False),
                pipeline_root=str(out_dir / "kfp"),
                raise_on_error=True,
            )
            try:
                task = churn_pipeline(**params.as_arguments())
            except RuntimeError as exc:
                failure = task_failure(exc, output, log_path)
                if failure is None:
                    raise
                raise failure from exc
        summary = _collect(params, task, out_dir)
    except KeyboardInterrupt:
        write_status(out_dir, INTERRUPTED)
        raise
    except Exception as exc:
        write_status(out_dir, FAILED, error=str(exc))
        raise
    registry = summary["registry"]
    write_status(out_dir, FINISHED, registered_model=registry["registered_model"],
                 version=registry["version"], gate=registry["gate"]["verdict"])  # fmt: skip
    return summary


def _collect(params: PipelineParams, task, out_dir: Path) -> dict:
    """Copy what the pipeline returned into the run-folder layout; return the summary."""
    artifacts = RunArtifacts.in_dir(out_dir)
    for name in COLLECTED:
        source, target = Path(task.outputs[name].path), getattr(artifacts, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copyfile(source, target)
    return summarize(params, artifacts, out_dir)


def summarize(params: PipelineParams, artifacts: RunArtifacts, out_dir: Path) -> dict:
    """The run's headline numbers and paths, written to ``summary.json``."""
    metrics = json.loads(artifacts.evaluation.read_text())
    profile = json.loads(artifacts.profile.read_text())
    meta = bundle.verify(artifacts.bundle)
    summary = {
        "run_dir": str(out_dir),
        "params": params.as_arguments(),
        "data": {k: profile.get(k) for k in SUMMARY_DATA},
        "metrics": {k: metrics[k] for k in SUMMARY_METRICS if k in metrics},
        "model": {"content_sha256": meta.content_sha256, "parity_max_abs_diff": meta.parity_max_abs_diff},
        "artifacts": {name: str(getattr(artifacts, name)) for name in COLLECTED},
        "registry": json.loads(artifacts.registration.read_text()),
    }
    with atomic_path(out_dir / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    return summary


def point_latest(runs_dir: Path, run_dir: Path) -> None:
    """Point ``runs/latest`` at ``run_dir``, which must be a finished run (:class:`RunStateError` if not)."""
    require_state(run_dir, FINISHED)
    latest = runs_dir / "latest"
    # a temporary link of its own: two runs finishing at once must not rename each other's
    tmp = runs_dir / f".latest.{os.getpid()}.{secrets.token_hex(3)}.tmp"
    tmp.symlink_to(run_dir.resolve())
    tmp.replace(latest)
