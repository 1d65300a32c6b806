"""The alert rules and dashboard of manifests/base/observability, as plain Prometheus inputs.

The PrometheusRule's ``spec`` is a Prometheus rule file (what the operator hands Prometheus), so
tests write it out for ``promtool`` and for a real Prometheus; dashboard queries get Grafana's
variables replaced by what Grafana would send ("All" is ``.*``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

OBSERVABILITY = Path(__file__).resolve().parents[2] / "manifests" / "base" / "observability"
RULE_MANIFEST = OBSERVABILITY / "prometheusrule.yaml"
DASHBOARD = OBSERVABILITY / "dashboard.json"
RULE_FILE_NAME = "churn-rules.yaml"  # what tests/infra/observability/churn-rules.test.yaml loads


def write_rule_file(folder: Path) -> Path:
    """The PrometheusRule's groups as a rule file in ``folder``."""
    spec = yaml.safe_load(RULE_MANIFEST.read_text())["spec"]
    path = Path(folder) / RULE_FILE_NAME
    path.write_text(yaml.safe_dump({"groups": spec["groups"]}, sort_keys=False))
    return path


def rules() -> list[dict]:
    """Every recording and alerting rule of the PrometheusRule."""
    spec = yaml.safe_load(RULE_MANIFEST.read_text())["spec"]
    return [rule for group in spec["groups"] for rule in group["rules"]]


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def dashboard_queries(rate_interval: str = "30s", range_: str = "2m") -> list[tuple[str, str]]:
    """``(panel title, PromQL)`` of every panel target, variables replaced as Grafana would."""
    replacements = {
        "$__rate_interval": rate_interval,
        "$__range": range_,
        "$namespace": ".*",
        "$model": ".*",
    }
    pattern = re.compile("|".join(re.escape(k) for k in sorted(replacements, key=len, reverse=True)))
    return [
        (panel["title"], pattern.sub(lambda m: replacements[m.group(0)], target["expr"]))
        for panel in dashboard()["panels"]
        for target in panel["targets"]
    ]


SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}


def exposed_series() -> set[str]:
    """Every ``churn_*`` series name the model server exposes (serving.metrics owns them), and the
    monitor's gauges (components.monitoring.metrics owns those)."""
    from prometheus_client import REGISTRY

    import serving.metrics  # noqa: F401 (registers the churn_* families)
    from components.monitoring.metrics import GAUGES

    return {
        family.name + suffix
        for family in REGISTRY.collect()
        if family.name.startswith("churn_")
        for suffix in SUFFIXES.get(family.type, ("",))
    } | set(GAUGES)
