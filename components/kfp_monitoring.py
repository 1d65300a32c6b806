"""KFP components of the ``churn-monitoring`` pipeline (pipelines/monitoring_pipeline.py).

:func:`monitor_op` runs the monitor over the last ``last_hours`` of the payload log
(:func:`components.monitor_step.monitor_step`: JSON result, HTML report, MLflow metrics on the
version, Prometheus gauges pushed when a Pushgateway is given); :func:`retrain_decision_op`
applies the retraining policy to its result and claims the incident
(:func:`components.retrain.trigger_retrain`): it returns ``retrain`` true only to the one run that
won the claim, and the pipeline runs the nested ``churn-training`` pipeline under ``dsl.If``.
Bodies import inside themselves because KFP ships each function's source alone.
"""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import HTML, Artifact, Input, Output

from components.config import load_settings

IMAGE = load_settings().components_image
component = dsl.component(base_image=IMAGE, install_kfp_package=False)


@component
def monitor_op(
    log_uri: str,
    model_uri: str,
    last_hours: float,
    labels_uri: str,
    pushgateway: str,
    mlflow: bool,
    result: Output[Artifact],
    report: Output[HTML],
) -> NamedTuple("MonitorOutputs", status=str, alerts=int):
    """Monitor the payload log's last ``last_hours`` hours (empty strings: not given)."""
    import logging
    from collections import namedtuple
    from datetime import datetime, timedelta, timezone
    from pathlib import Path

    from components.config import load_settings
    from components.monitor_step import monitor_step

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    until = datetime.now(timezone.utc)
    found = monitor_step(
        load_settings(),
        log_uri,
        model=model_uri or None,
        since=until - timedelta(hours=last_hours),
        until=until,
        labels=labels_uri or None,
        result_path=Path(result.path),
        report_path=Path(report.path),
        mlflow=mlflow,
        pushgateway=pushgateway or None,
    )
    return namedtuple("MonitorOutputs", ["status", "alerts"])(found.status, len(found.alerts))


@component
def retrain_decision_op(
    result: Input[Artifact],
    retrain_data_uri: str,
    on_drift: bool,
    min_auc: float,
    max_gap: float,
    cooldown_hours: float,
    run_id: str,
    decision: Output[Artifact],
) -> bool:
    """Decide from the monitor's result; true only for the run that claimed the incident. The
    outcome (action, kind, reasons, key, message) goes to ``decision`` as JSON. A single ``bool``
    return, not a NamedTuple: kfp.local 2.17 cannot resolve a named output in a ``dsl.If``."""
    import json
    import logging
    from pathlib import Path

    from components.config import load_settings
    from components.params import PipelineParams
    from components.retrain import (
        RetrainOutcome,
        RetrainPolicy,
        decide,
        retrain_params,
        signals_from_result,
        trigger_retrain,
    )

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = load_settings()
    signals = signals_from_result(json.loads(Path(result.path).read_text()))
    policy = RetrainPolicy(
        on_drift=on_drift, min_auc=min_auc, max_gap=max_gap, cooldown_s=cooldown_hours * 3600
    )
    verdict = decide(signals, policy)
    if not verdict.retrain:
        outcome = RetrainOutcome("none", verdict, message=verdict.reason)
    else:
        # The nested training gets retrain_data_uri itself: empty is a ConfigError naming it here,
        # before anything is claimed (never a silent retrain on synthetic data).
        params = retrain_params(PipelineParams(), retrain_data_uri, signals)
        outcome = trigger_retrain(
            signals,
            policy,
            params,
            settings,
            lambda _params, name: {"id": run_id, "where": f"churn-monitoring, nested {name}"},
            owner=f"churn-monitoring {run_id}",
        )
    print(outcome.message)
    Path(decision.path).write_text(json.dumps(outcome.to_dict(), indent=2, sort_keys=True))
    return outcome.action == "submitted"
