"""The ``churn-monitoring`` pipeline: monitor the payload log, decide, retrain once per incident.

``monitor`` runs the monitor over the last ``last_hours`` of the payload log against the served
version's reference (JSON result, HTML report, MLflow metrics on the version, Prometheus gauges
pushed to ``pushgateway`` when given); ``retrain-decision`` applies the retraining policy and
claims the incident in the durable record (one claim per incident key, none inside the cooldown:
``components/retrain_claims.py``); only the run that won the claim runs the nested
``churn-training`` pipeline (``dsl.If``) on ``retrain_data_uri`` (required once a retrain is
due), which registers the new version through the normal gate. Every task goes
through pipelines/resources.py's ``on_the_platform`` (sizes, node pool, ``churn-platform`` env).

Schedule it with ``churn schedule create --pipeline churn-monitoring --cron '*/15 * * * *'
--param log_uri=s3://...``; ``python -m pipelines.monitoring_pipeline run|compile`` runs it under
``kfp.local`` (``make monitor``) or writes the IR YAML.
"""

import argparse
import sys
from pathlib import Path

from kfp import dsl

from components.kfp_monitoring import monitor_op, retrain_decision_op
from components.params import PipelineParams
from components.retrain import RetrainPolicy
from pipelines.pipeline import build_pipeline
from pipelines.remote import write_ir
from pipelines.resources import for_environment, on_the_platform

PIPELINE_NAME = "churn-monitoring"
_P, _T = RetrainPolicy(), PipelineParams()


def build_monitoring_pipeline(environment: str = "dev"):
    """The pipeline function for ``environment`` (its training sub-pipeline is sized for it too)."""
    resources = for_environment(environment)
    training = build_pipeline(environment)

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description="Monitor the payload log; retrain once per incident when the model drifts or decays.",
    )
    def monitoring_pipeline(
        log_uri: str,
        model_uri: str = "",
        last_hours: float = 24.0,
        labels_uri: str = "",
        pushgateway: str = "",
        mlflow: bool = True,
        retrain_data_uri: str = "",
        on_drift: bool = _P.on_drift,
        min_auc: float = _P.min_auc,
        max_gap: float = _P.max_gap,
        cooldown_hours: float = _P.cooldown_s / 3600,
        search_budget: int = _T.search_budget,
        cv_folds: int = _T.cv_folds,
        promote: bool = _T.promote,
    ) -> dsl.Artifact:
        monitor = monitor_op(
            log_uri=log_uri,
            model_uri=model_uri,
            last_hours=last_hours,
            labels_uri=labels_uri,
            pushgateway=pushgateway,
            mlflow=mlflow,
        )
        on_the_platform(monitor, "monitor", resources)
        decision = retrain_decision_op(
            result=monitor.outputs["result"],
            retrain_data_uri=retrain_data_uri,
            on_drift=on_drift,
            min_auc=min_auc,
            max_gap=max_gap,
            cooldown_hours=cooldown_hours,
            run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
        )
        on_the_platform(decision, "retrain-decision", resources)
        with dsl.If(decision.outputs["Output"] == True, name="retrain-once"):  # noqa: E712 (a KFP condition)
            training(
                data_uri=retrain_data_uri, search_budget=search_budget, cv_folds=cv_folds, promote=promote
            ).set_display_name("churn-training")
        return decision.outputs["decision"]

    return monitoring_pipeline


def run_monitoring_local(pipeline_root: Path, **arguments) -> dict:
    """Run the pipeline under ``kfp.local`` (subprocess runner, this interpreter); the retrain
    decision's outcome (``action`` none / skipped / submitted, ``message``, ``key``...)."""
    import json

    import kfp.local

    kfp.local.init(
        runner=kfp.local.SubprocessRunner(use_venv=False),
        pipeline_root=str(pipeline_root),
        raise_on_error=True,
    )
    return json.loads(Path(build_monitoring_pipeline()(**arguments).output.path).read_text())


def compile_monitoring_pipeline(out: Path, environment: str | None = None) -> Path:
    """Write the pipeline's IR YAML for ``environment`` (default: CHURN_ENV, else dev) to ``out``."""
    from components.config import load_settings

    return write_ir(build_monitoring_pipeline(environment or load_settings().environment), out)


def main(argv: list[str] | None = None) -> int:
    """``python -m pipelines.monitoring_pipeline run|compile``: ``make monitor`` calls ``run``."""
    from components.config import load_settings
    from components.errors import ChurnError

    parser = argparse.ArgumentParser(prog="python -m pipelines.monitoring_pipeline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run under kfp.local")
    run.add_argument("--log", required=True, help="payload log: folder or s3:// prefix")
    run.add_argument("--last-hours", type=float, default=24.0)
    run.add_argument(
        "--data", default="", help="fresh labelled data to retrain on (default: CHURN_RETRAIN_DATA_URI)"
    )
    run.add_argument("--pushgateway", default="", help="Prometheus Pushgateway host:port (default: none)")
    run.add_argument("--budget", type=int, default=_T.search_budget)
    run.add_argument("--cv-folds", type=int, default=_T.cv_folds)
    run.add_argument("--pipeline-root", default="build/monitoring-kfp", help="kfp.local's pipeline root")
    comp = sub.add_parser("compile", help="write the IR YAML")
    comp.add_argument("--out", default="build/churn_monitoring_pipeline.yaml")
    args = parser.parse_args(argv)
    if args.command == "compile":
        print(f"wrote {compile_monitoring_pipeline(Path(args.out))}")
        return 0
    try:
        outcome = run_monitoring_local(
            Path(args.pipeline_root).resolve(),
            log_uri=args.log,
            last_hours=args.last_hours,
            retrain_data_uri=args.data or load_settings().retrain_data_uri,
            pushgateway=args.pushgateway,
            search_budget=args.budget,
            cv_folds=args.cv_folds,
            promote=True,
        )
    except (ChurnError, RuntimeError) as exc:  # RuntimeError: kfp.local's "task failed" (details above)
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"churn-monitoring: retrain {outcome['action']}: {outcome['message']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
