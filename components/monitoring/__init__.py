"""Monitoring of a served model version: drift on effect size, label-free performance (CBPE),
live accuracy once labels land, and their reconciliation. See ``docs/monitoring.md``.

The entry point is :func:`run_monitor`; the reference it compares with is
:mod:`components.reference`'s, resolved for a payload log by :mod:`components.monitor_model`.
"""

from components.monitoring.monitor import (
    ALERT,
    NOT_ENOUGH,
    OK,
    WARN,
    Check,
    MonitorConfig,
    MonitorError,
    MonitorResult,
    run_monitor,
)

__all__ = [
    "ALERT",
    "NOT_ENOUGH",
    "OK",
    "WARN",
    "Check",
    "MonitorConfig",
    "MonitorError",
    "MonitorResult",
    "run_monitor",
]
