"""Alerts, dashboard and scraping of churn serving: promtool, the operator's CRD schemas, kustomize.

The Prometheus Operator kinds are validated against the operator's own CRD schemas (vendored in
tests/infra/schemas, version of the kube-prometheus-stack we install) with unknown fields
rejected and fields the CRD marks deprecated refused. That the rule expressions and dashboard
queries run against real data is tests/components/rollout/test_analysis_prometheus.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.infra.test_manifests import IDS, OVERLAYS, build, one
from tests.support.observability import (
    RULE_MANIFEST,
    dashboard,
    dashboard_queries,
    exposed_series,
    rules,
    write_rule_file,
)

HERE = Path(__file__).resolve().parent
CRDS = HERE / "schemas" / "prometheus-operator-v0.86.2"
RULE_TESTS = HERE / "observability" / "churn-rules.test.yaml"
PODMONITOR = HERE.parents[1] / "manifests" / "base" / "podmonitor.yaml"
KUBE_PROMETHEUS_RELEASE = "kube-prometheus-stack"  # platform/versions.yaml's helm release name


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool not installed (apt-get install prometheus)")
    return path


def crd_schema(kind_plural: str) -> dict:
    crd = yaml.safe_load((CRDS / f"monitoring.coreos.com_{kind_plural}.yaml").read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return strict(version["schema"]["openAPIV3Schema"])


def strict(schema: dict) -> dict:
    """The CRD schema with unknown fields rejected, as the API server's strict field validation does."""
    schema = dict(schema)
    if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
        schema.setdefault("additionalProperties", False)
        schema["properties"] = {k: strict(v) for k, v in schema["properties"].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            schema[key] = strict(schema[key])
    for key in ("anyOf", "allOf", "oneOf"):
        if key in schema:
            schema[key] = [strict(s) for s in schema[key]]
    return schema


def deprecated_fields(value, schema: dict, path: str = "") -> list[str]:
    """Fields of ``value`` whose schema description says ``Deprecated``."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            extra = schema.get("additionalProperties")
            sub = schema.get("properties", {}).get(key) or (extra if isinstance(extra, dict) else None)
            if sub is None:
                continue
            if "Deprecated:" in sub.get("description", ""):
                found.append(f"{path}.{key}")
            found += deprecated_fields(item, sub, f"{path}.{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            found += deprecated_fields(item, schema["items"], f"{path}[{i}]")
    return found


def validate(manifest: dict, kind_plural: str) -> None:
    schema = crd_schema(kind_plural)
    body = {k: v for k, v in manifest.items() if k != "metadata"}
    schema["properties"].pop("metadata", None)
    # Not jsonschema.validate: its schema check compiles every pattern with Python's re, and the
    # CRDs hold Go (RE2) patterns such as '^(?i)(abort|warn)?$' that Python refuses.
    jsonschema.Draft7Validator(schema).validate(body)
    assert not deprecated_fields(body, schema), deprecated_fields(body, schema)


def test_rules_pass_promtool_check_and_unit_tests(tmp_path):
    tool = promtool()
    rules = write_rule_file(tmp_path)
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    check = subprocess.run([tool, "check", "rules", str(rules)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    tested = subprocess.run(
        [tool, "test", "rules", RULE_TESTS.name], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_rule_unit_tests_can_fail(tmp_path):
    """A rule with a changed threshold breaks its promtool test: the tests pin the rules."""
    tool = promtool()
    manifest = yaml.safe_load(RULE_MANIFEST.read_text())
    for group in manifest["spec"]["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") == "ChurnHighErrorRate":
                rule["expr"] = rule["expr"].replace("> 0.01", "> 0.2")
    (tmp_path / "churn-rules.yaml").write_text(yaml.safe_dump({"groups": manifest["spec"]["groups"]}))
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    command = [tool, "test", "rules", RULE_TESTS.name]
    tested = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert tested.returncode != 0 and "ChurnHighErrorRate" in tested.stdout + tested.stderr


@pytest.mark.parametrize("overlay", OVERLAYS, ids=IDS)
def test_operator_kinds_match_their_crd_schemas(overlay):
    docs = build(overlay)
    validate(one(docs, "PodMonitor"), "podmonitors")
    validate(one(docs, "PrometheusRule"), "prometheusrules")


def test_the_schema_check_catches_deprecated_and_unknown_fields():
    monitor = yaml.safe_load(PODMONITOR.read_text())
    endpoint = monitor["spec"]["podMetricsEndpoints"][0]
    deprecated = json.loads(json.dumps(monitor))
    deprecated["spec"]["podMetricsEndpoints"][0] = {**endpoint, "targetPort": 8080}
    deprecated["spec"]["podMetricsEndpoints"][0].pop("portNumber")
    with pytest.raises(AssertionError, match="targetPort"):
        validate(deprecated, "podmonitors")
    unknown = json.loads(json.dumps(monitor))
    unknown["spec"]["podMetricsEndpoints"][0]["scrapeEvery"] = "15s"
    with pytest.raises(jsonschema.ValidationError, match="scrapeEvery"):
        validate(unknown, "podmonitors")


@pytest.mark.parametrize("overlay", OVERLAYS, ids=IDS)
def test_stock_kube_prometheus_stack_selects_the_monitor_and_the_rules(overlay):
    docs = build(overlay)
    for kind in ("PodMonitor", "PrometheusRule"):
        assert one(docs, kind)["metadata"]["labels"]["release"] == KUBE_PROMETHEUS_RELEASE, kind


@pytest.mark.parametrize("overlay", OVERLAYS, ids=IDS)
def test_dashboard_ships_as_a_configmap_the_grafana_sidecar_loads(overlay):
    configmap = one(build(overlay), "ConfigMap", "churn-grafana-dashboard")
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    (name,) = configmap["data"]
    assert name.endswith(".json")
    assert json.loads(configmap["data"][name]) == dashboard()


def test_dashboard_covers_requests_latency_errors_scores_positive_rate_and_canary_share():
    panels = dashboard()["panels"]
    exprs = " ".join(t["expr"] for p in panels for t in p["targets"])
    for metric in (
        "churn_request_duration_seconds_count",  # requests, errors, canary share
        "churn_request_duration_seconds_bucket",  # latency
        "churn_prediction_score_bucket",  # score distribution
        "churn_positive_predictions_total",
        "churn_unknown_categories_total",
        "churn_model_ready",
        "churn_payload_log_dropped_rows_total",
    ):
        assert metric in exprs, metric
    titles = " ".join(p["title"].lower() for p in panels)
    for topic in ("requests", "latency", "error", "score distribution", "positive rate", "canary share"):
        assert topic in titles, topic
    assert all("registry_version" in t["expr"] for p in panels[:8] for t in p["targets"])
    assert len({p["id"] for p in panels}) == len(panels)


def test_rules_and_dashboard_name_only_series_the_server_exposes():
    expressions = [r["expr"] for r in rules()] + [q for _, q in dashboard_queries()]
    used = {name for expr in expressions for name in re.findall(r"\bchurn_[a-z_]+", expr)}
    assert used, "no churn_ series found in the expressions"
    assert used <= exposed_series(), used - exposed_series()
