"""One monitor run with its outputs: :func:`components.monitor_model.monitor_payload_log` (the
version that served the window, its reference, the monitor), then the JSON result, the HTML
report, MLflow metrics and Pushgateway gauges asked for. ``churn retrain check --log`` and the
``churn-monitoring`` pipeline's ``monitor`` task (:mod:`components.kfp_monitoring`) call it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from components.config import Settings
from components.monitor_model import log_to_mlflow, monitor_payload_log
from components.monitoring import MonitorConfig, MonitorResult
from components.monitoring.report import write_report
from components.storage import atomic_path


def monitor_step(
    settings: Settings,
    log_uri: str,
    *,
    model: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    labels: str | None = None,
    key_column: str = "request_id",
    config: MonitorConfig | None = None,
    result_path: Path | None = None,
    report_path: Path | None = None,
    mlflow: bool = False,
    pushgateway: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> MonitorResult:
    """Monitor ``log_uri`` in ``[since, until)`` against its served version (or ``model``); write the
    JSON result and the HTML report when given paths, log to MLflow, push gauges to ``pushgateway``."""
    result = monitor_payload_log(
        settings,
        log_uri,
        model=model,
        since=since,
        until=until,
        labels=labels,
        key_column=key_column,
        config=config,
        progress=progress,
    )
    if mlflow:
        result.messages.append(f"MLflow run {log_to_mlflow(settings, result)}")
    if pushgateway:
        from components.monitoring.metrics import push

        push(result, pushgateway)
    if report_path is not None:
        write_report(result, Path(report_path))
    if result_path is not None:
        with atomic_path(Path(result_path)) as tmp:
            tmp.write_text(json.dumps(result.to_dict(), indent=2, default=str) + "\n")
    return result
