"""Run the pipeline on this machine under ``kfp.local`` and gather its outputs in one folder.

The run folder (``$CHURN_HOME/runs/<UTC time>/`` unless ``--out`` says otherwise) uses the
layout of :class:`components.artifacts.RunArtifacts` for what the pipeline returns (metrics,
report, model bundle, data profile, quarantine, registration), plus ``summary.json`` (what
``churn run`` printed) and ``kfp/`` (kfp.local's own pipeline root: every task's artifacts and
executor output). ``docs/pipeline.md`` lists each file.
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path

from components import bundle
from components.artifacts import RunArtifacts
from components.errors import ChurnError
from components.params import PipelineParams
from components.storage import atomic_path

# The pipeline's outputs (see pipelines.pipeline.PipelineOutputs), named like RunArtifacts fields.
COLLECTED: tuple[str, ...] = ("evaluation", "report", "bundle", "profile", "quarantine", "registration")
SUMMARY_METRICS = (
    "roc_auc", "oracle_roc_auc", "pr_auc", "log_loss", "brier", "threshold", "threshold_max_f1",
    "precision", "recall", "f1", "expected_profit", "profit_per_customer",
)  # fmt: skip


class RunFolderError(ChurnError, FileExistsError):
    """The run folder asked for already holds something: a run never mixes into another's files."""


class PipelineRunError(ChurnError, RuntimeError):
    """A pipeline task failed under kfp.local; the task's own error is in its log above."""


def _task_failure(exc: RuntimeError) -> PipelineRunError | None:
    """kfp.local reports a failed task as a RuntimeError with coloured text; the step's own error
    (e.g. an IngestError) is only in the task's log. ``None`` for any other RuntimeError."""
    message = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    failed = re.search(r"Inner task failed: '([^']+)'", message)
    if "finished with status FAILURE" not in message:
        return None
    task = failed.group(1) if failed else "a task"
    return PipelineRunError(f"pipeline task {task!r} failed; its log above says why")


def default_run_dir(runs_dir: Path) -> Path:
    return runs_dir / datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")


def run_local(params: PipelineParams, out_dir: Path) -> dict:
    """Run the whole pipeline locally; return the run summary (also written to summary.json)."""
    import kfp.local

    from pipelines.pipeline import churn_pipeline

    out_dir = Path(out_dir).resolve()
    if out_dir.exists() and any(out_dir.iterdir()):
        raise RunFolderError(f"--out {out_dir} exists and is not empty: pick a new folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    kfp.local.init(
        runner=kfp.local.SubprocessRunner(use_venv=False),
        pipeline_root=str(out_dir / "kfp"),
        raise_on_error=True,
    )
    try:
        task = churn_pipeline(**params.as_arguments())
    except RuntimeError as exc:
        failure = _task_failure(exc)
        if failure is None:
            raise
        raise failure from exc
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
        "data": {k: profile[k] for k in ("source_uri", "data_hash", "rows", "quarantined", "splits")},
        "metrics": {k: metrics[k] for k in SUMMARY_METRICS if k in metrics},
        "model": {"content_sha256": meta.content_sha256, "parity_max_abs_diff": meta.parity_max_abs_diff},
        "artifacts": {name: str(getattr(artifacts, name)) for name in COLLECTED},
        "registry": json.loads(artifacts.registration.read_text()),
    }
    with atomic_path(out_dir / "summary.json") as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    return summary


def point_latest(runs_dir: Path, run_dir: Path) -> None:
    """Keep ``runs/latest`` pointing at the newest successful run."""
    latest = runs_dir / "latest"
    tmp = runs_dir / ".latest.tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run_dir.resolve())
    tmp.replace(latest)
