"""The monitor's Prometheus metrics: the one owner of their names and labels.

Each monitor run sets a gauge per feature and check in its own registry (never the process
default: a server process keeps only the latest run's series), which ``churn monitor serve``
exposes on ``/metrics`` and the KFP step can push to a Pushgateway. Series carry the monitored
version (``content_id``, ``registry_version``) so a rollout's two versions never mix.
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from components.monitoring.monitor import _SEVERITY, MonitorResult

VERSION = ("content_id", "registry_version")
# Gauge name -> (help, extra labels)
GAUGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "churn_monitor_psi": (
        "Population stability index of a feature (or the score) vs the reference",
        ("feature",),
    ),
    "churn_monitor_kl_divergence": (
        "KL divergence (current || reference), nats, on the reference bins",
        ("feature",),
    ),
    "churn_monitor_js_distance": ("Jensen-Shannon distance (base 2) vs the reference", ("feature",)),
    "churn_monitor_pvalue_adjusted": ("Drift test p-value after multiple-testing correction", ("feature",)),
    "churn_monitor_unknown_share": (
        "Share of a categorical feature's values outside the schema",
        ("feature",),
    ),
    "churn_monitor_check_level": (
        "Check verdict: 0 ok, 1 not enough data, 2 warn, 3 alert",
        ("check", "feature"),
    ),
    "churn_monitor_window_rows": ("Payload-log rows in the monitored window", ()),
    "churn_monitor_positive_rate": ("Share of rows predicted to churn in the window", ()),
    "churn_monitor_estimated_roc_auc": ("Label-free (CBPE) ROC AUC estimate and its interval", ("bound",)),
    "churn_monitor_realised_roc_auc": ("ROC AUC on the window's rows whose labels arrived", ()),
    "churn_monitor_reconciliation_gap": (
        "Realised minus estimated metric on the same labelled rows",
        ("metric",),
    ),
    "churn_monitor_last_run_timestamp_seconds": ("When the monitor last finished (Unix time)", ()),
}


def registry_for(result: MonitorResult) -> CollectorRegistry:
    """A fresh registry holding ``result`` as gauges."""
    registry = CollectorRegistry()
    gauges = {
        name: Gauge(name, text, [*VERSION, *extra], registry=registry)
        for name, (text, extra) in GAUGES.items()
    }
    version = (
        (result.model.get("content_sha256") or "unknown")[:12],
        result.model.get("registry_version") or "unregistered",
    )

    def put(name: str, value: float, *labels: str) -> None:
        if value is not None and value == value:  # NaN: no sample rather than a misleading one
            gauges[name].labels(*version, *labels).set(value)

    for feature, values in {**result.features, "score": result.prediction}.items():
        for key, name in (
            ("psi", "churn_monitor_psi"),
            ("kl", "churn_monitor_kl_divergence"),
            ("js", "churn_monitor_js_distance"),
            ("pvalue_adjusted", "churn_monitor_pvalue_adjusted"),
        ):
            if key in values:
                put(name, values[key], feature)
    for check in result.checks:
        put("churn_monitor_check_level", _SEVERITY[check.level], check.check, check.feature or "")
        if check.check == "unknown_categories":
            put("churn_monitor_unknown_share", check.values["share"], check.feature)
    put("churn_monitor_window_rows", result.rows)
    if "positive_rate" in result.prediction:
        put("churn_monitor_positive_rate", result.prediction["positive_rate"])
    if result.estimate:
        auc = result.estimate["roc_auc"]
        for bound in ("value", "low", "high"):
            put("churn_monitor_estimated_roc_auc", auc[bound], bound)
    if result.live and "metrics" in result.live:
        put("churn_monitor_realised_roc_auc", result.live["metrics"]["roc_auc"])
    if result.reconciliation:
        for metric, values in result.reconciliation["metrics"].items():
            put("churn_monitor_reconciliation_gap", values["gap"], metric)
    put("churn_monitor_last_run_timestamp_seconds", time.time())
    return registry


def push(result: MonitorResult, gateway: str, job: str = "churn-monitor") -> None:
    """Push ``result``'s gauges to a Prometheus Pushgateway (the KFP step's way)."""
    push_to_gateway(gateway, job=job, registry=registry_for(result))
