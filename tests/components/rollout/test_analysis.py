"""The analysis configuration and the PromQL label selectors (the checks run in test_analysis_prometheus)."""

from __future__ import annotations

import pytest

from components.rollout.analysis import AnalysisConfig, AnalysisConfigError, VersionRef
from components.rollout.prometheus import PrometheusClient, PrometheusError


def test_selector_names_the_version_and_the_shared_matchers():
    ref = VersionRef("4", matchers={"namespace": "churn-prod"})
    wanted = '{namespace="churn-prod",model_name="churn",registry_version="4",code="5xx"}'
    assert ref.selector(code="5xx") == wanted


def test_selector_escapes_values_and_refuses_bad_label_names():
    assert VersionRef('4"} or vector(1) or {x="', model_name="a\\b").selector() == (
        '{model_name="a\\\\b",registry_version="4\\"} or vector(1) or {x=\\""}'
    )
    with pytest.raises(AnalysisConfigError, match="'bad-name' is not a Prometheus label name"):
        VersionRef("4", matchers={"bad-name": "x"}).selector()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("window", "5 minutes", "AnalysisConfig.window must be a Prometheus duration"),
        ("min_requests", 0, "AnalysisConfig.min_requests must be a whole number >= 1"),
        ("min_rows", 2.5, "AnalysisConfig.min_rows must be a whole number >= 1"),
        ("max_score_js", float("nan"), "AnalysisConfig.max_score_js must be a finite number >= 0"),
        ("max_error_rate_increase", -0.1, "AnalysisConfig.max_error_rate_increase must be a finite number"),
        ("max_latency_ratio", 0.5, "AnalysisConfig.max_latency_ratio must be >= 1"),
    ],
)
def test_a_bad_bound_is_refused_naming_the_field(field, value, message):
    with pytest.raises(AnalysisConfigError, match=message):
        AnalysisConfig(**{field: value})


def test_whole_floats_from_kfp_are_accepted():
    assert AnalysisConfig(min_requests=300.0).min_requests == 300


def test_prometheus_url_must_be_http():
    with pytest.raises(PrometheusError, match="must start with http"):
        PrometheusClient("prometheus:9090")


def test_the_analysis_reads_only_series_the_server_exposes():
    from components.rollout import analysis
    from tests.support.observability import exposed_series

    used = {analysis.REQUESTS, analysis.LATENCY, analysis.OUTCOMES, analysis.ROWS}
    used |= {analysis.POSITIVES, analysis.SCORES, analysis.UNKNOWN}
    assert used <= exposed_series(), used - exposed_series()
