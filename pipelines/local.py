"""Run the pipeline on this machine under ``kfp.local`` and gather its outputs in one folder.

Layout of a run folder (``.churn/runs/<UTC time>/`` unless ``--out`` says otherwise)::

    metrics.json        evaluation: every metric, curve and the chosen threshold
    report.html         the evaluation report with plots
    model/model.onnx    the serving bundle (with model/metadata.json)
    data_profile.json   ingest summary, data hash, per-feature statistics (drift reference)
    quarantine.csv      rejected rows with a reason each
    registration.json   MLflow version, gate verdict, comparison with the champion, alias moves
    summary.json        what `churn run` printed, for scripts and CI
    kfp/                kfp.local's own pipeline root (every task's artifacts and executor output)
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

from components.storage import atomic_path
from pipelines.params import PipelineParams

# Pipeline output name → file or folder in the run folder.
COLLECTED = {
    "evaluation": "metrics.json",
    "report": "report.html",
    "bundle": "model",
    "profile": "data_profile.json",
    "quarantine": "quarantine.csv",
    "registration": "registration.json",
}


def default_run_dir(runs_dir: Path) -> Path:
    return runs_dir / datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")


def run_local(params: PipelineParams, out_dir: Path) -> dict:
    """Run the whole pipeline locally; return the run summary (also written to summary.json)."""
    import kfp.local

    from pipelines.pipeline import churn_pipeline

    out_dir = Path(out_dir).resolve()
    if out_dir.exists() and any(out_dir.iterdir()):
        raise FileExistsError(f"--out {out_dir} exists and is not empty: pick a new folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    kfp.local.init(
        runner=kfp.local.SubprocessRunner(use_venv=False),
        pipeline_root=str(out_dir / "kfp"),
        raise_on_error=True,
    )
    task = churn_pipeline(**params.as_arguments())
    for name, target in COLLECTED.items():
        source = Path(task.outputs[name].path)
        if source.is_dir():
            shutil.copytree(source, out_dir / target)
        else:
            shutil.copyfile(source, out_dir / target)
    return summarize(params, out_dir)


def summarize(params: PipelineParams, out_dir: Path) -> dict:
    """The run's headline numbers and paths, written to ``summary.json``."""
    metrics = json.loads((out_dir / "metrics.json").read_text())
    profile = json.loads((out_dir / "data_profile.json").read_text())
    meta = json.loads((out_dir / "model" / "metadata.json").read_text())
    keys = ("roc_auc", "oracle_roc_auc", "pr_auc", "log_loss", "brier", "threshold", "threshold_max_f1",
            "precision", "recall", "f1", "expected_profit", "profit_per_customer")  # fmt: skip
    summary = {
        "run_dir": str(out_dir),
        "params": params.as_arguments(),
        "data": {k: profile[k] for k in ("source_uri", "data_hash", "rows", "quarantined", "splits")},
        "metrics": {k: metrics[k] for k in keys if k in metrics},
        "model": {
            "model_version": meta["model_version"],
            "onnx_sha256": meta["onnx_sha256"],
            "parity_max_abs_diff": meta["parity_max_abs_diff"],
        },
        "artifacts": {name: str(out_dir / target) for name, target in COLLECTED.items()},
        "registry": json.loads((out_dir / "registration.json").read_text()),
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
