"""The pipeline's steps as plain functions over a :class:`~components.artifacts.RunArtifacts`.

:func:`run_steps` chains them in-process (tests, benchmarks); the KFP component bodies in
:mod:`components.kfp_components` call the same functions on the paths KFP hands each task
(:func:`task_artifacts`), so a step runs the same everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

from components.artifacts import Lineage, RunArtifacts, feature_lineage
from components.config import Settings
from components.evaluate import BusinessConfig, evaluate
from components.export import export
from components.gate import GateConfig
from components.ingest import ingest
from components.params import PipelineParams
from components.report import write_report
from components.storage import atomic_path
from components.train import train

STEPS: tuple[str, ...] = ("ingest", "train", "evaluate", "export", "register")
REPORT_TITLE = "Churn model evaluation"
# Marks a KFP task's progress lines in its output: `churn run` shows these on the console and
# sends the rest of kfp.local's output to the run's log file.
PROGRESS_MARK = "churn-progress: "

# Where a task's record points for the artifacts KFP did not hand that task: a step touching one
# fails on a path that says so, instead of reading or writing somewhere plausible.
_NOT_GIVEN = Path("/not-an-input-of-this-task")


def task_artifacts(**given: str | Path) -> RunArtifacts:
    """The record for one KFP task, built from the artifact paths KFP gave it (by field name)."""
    return replace(RunArtifacts.in_dir(_NOT_GIVEN), **{name: Path(path) for name, path in given.items()})


def print_progress(message: str) -> None:
    """A KFP task body's progress callback: one marked line on stdout, flushed at once (a pipe
    would otherwise hold it until the task ends)."""
    print(f"{PROGRESS_MARK}{message}", flush=True)


def evaluate_step(artifacts: RunArtifacts, business: BusinessConfig, data_hash: str) -> dict:
    """Evaluate the model (metrics.json) and write the HTML report; return the evaluation."""
    result = evaluate(artifacts, business)
    write_report(result, artifacts.report, REPORT_TITLE, {"data_hash": data_hash, **asdict(business)})
    return result


def registration_params(artifacts: RunArtifacts, business: BusinessConfig, gate: GateConfig) -> dict:
    """The parameters an MLflow run records: train config, best hyperparameters, business, gate."""
    search = json.loads(artifacts.search.read_text())
    return {**search["config"], "best": search["best_params"], "business": asdict(business),
            "gate": gate.to_dict()}  # fmt: skip


def register_step(
    artifacts: RunArtifacts,
    lineage: Lineage,
    *,
    params: dict,
    gate: GateConfig,
    promote: bool,
    settings: Settings,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Register the bundle (MLflow run, version, gate, aliases); write and return the summary."""
    from components.registry import register_model  # mlflow is heavy: only the register step needs it

    summary = register_model(
        artifacts, lineage, params=params, gate=gate, promote=promote, settings=settings, progress=progress
    )
    with atomic_path(artifacts.registration) as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    return summary


def run_steps(
    params: PipelineParams,
    root: Path,
    settings: Settings,
    progress: Callable[[str], None] | None = None,
    *,
    pipeline_run_id: str = "in-process",
) -> RunArtifacts:
    """Run every step in this process into the run folder ``root``; return its artifacts.

    ``progress`` receives each step's name (one of :data:`STEPS`) as it starts, and the train
    and register steps' own progress lines.
    """
    say = progress or (lambda _message: None)
    artifacts = RunArtifacts.in_dir(root)
    say("ingest")
    source_uri = params.source_uri()
    data = ingest(source_uri, artifacts, params.ingest_config(), settings)
    lineage = Lineage(
        data_hash=data["data_hash"], source_uri=source_uri, pipeline_run_id=pipeline_run_id,
        feature_lineage=feature_lineage(artifacts.profile),
    )  # fmt: skip
    say("train")
    train(artifacts, params.train_config(), progress=progress)
    say("evaluate")
    evaluate_step(artifacts, params.business_config(), lineage.data_hash)
    say("export")
    export(artifacts, data_hash=lineage.data_hash, model_type=params.model_type)
    say("register")
    register_step(
        artifacts, lineage,
        params=registration_params(artifacts, params.business_config(), params.gate_config()),
        gate=params.gate_config(), promote=params.promote, settings=settings, progress=progress,
    )  # fmt: skip
    return artifacts
