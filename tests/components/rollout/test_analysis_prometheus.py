"""Canary analysis against a REAL Prometheus on 127.0.0.1 scraping real model servers under traffic.

One stable server (registry version 1) and four canaries, all fed the same requests: a good
copy (2), a graph that ONNX Runtime fails on for batches > 1 row (3), the good model behind a
TCP proxy that delays each request body (4, slow by a real mechanism: the server's clock starts
at the headers), and a model trained on shuffled labels (5: same latency, no errors, other
scores). Before the traffic, version 2 has had only a handful of requests: that instant is the
too-little-traffic case. The alert rules of manifests/base/observability are loaded into the
same Prometheus, and every dashboard query runs against it.
"""

from __future__ import annotations

import random
import re
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from components.rollout.analysis import REQUESTS, AnalysisConfig, VersionRef, analyze
from components.rollout.prometheus import PrometheusClient, PrometheusError
from components.rollout.verdict import HOLD, PROMOTE, ROLLBACK
from components.schema import FEATURES
from serving.examples import v2_request
from tests.components.rollout.conftest import failing_on_batches, publish
from tests.support.model_server import start_model_server
from tests.support.prometheus_server import start_prometheus
from tests.support.slow_proxy import SlowBodyProxy

pytestmark = pytest.mark.integration

REQUESTS_PER_VERSION = 240
QUIET_REQUESTS = 10
QUIET_SAMPLES = 5
DELAY_S = 0.25
# The suite's machine is shared and small: a generous latency slack keeps scheduler noise on two
# copies of one model from failing the good canary; the slow canary's 250 ms is far beyond it.
CONFIG = AnalysisConfig(window="2m", min_requests=200, min_rows=500, latency_slack_s=0.05)
BEHAVIOUR = {"score distribution (JS distance)", "positive rate", "unknown-category rate"}
SERVING = {"error rate (5xx)", "ONNX Runtime failures", "p95 latency (s)", "p99 latency (s)"}


def send(url: str, bodies: list[dict], threads: int) -> list[int]:
    """POST every body to ``url`` (a new connection each), ``threads`` at a time; the status codes."""

    def post(body: dict) -> int:
        return requests.post(f"{url}/v2/models/churn/infer", json=body, timeout=30).status_code

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(post, bodies))


class Fleet:
    def __init__(self, prometheus, servers, proxy, quiet_at: float, statuses: dict[str, list[int]]):
        self.prometheus, self.servers, self.proxy = prometheus, servers, proxy
        self.client = PrometheusClient(prometheus.url)
        self.quiet_at, self.statuses = quiet_at, statuses

    def verdict(self, canary: str, at: float | None = None):
        return analyze(self.client, VersionRef("1"), VersionRef(canary), CONFIG, at=at)


def wait_counted(prometheus, version: str, count: int, timeout: float = 30) -> None:
    """Until Prometheus has scraped ``count`` answered requests of ``version``."""
    promql = f'sum(churn_request_duration_seconds_count{{registry_version="{version}"}})'
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = prometheus.query(promql)
        if result and float(result[0]["value"][1]) >= count:
            return
        time.sleep(0.5)
    raise TimeoutError(f"Prometheus never counted {count} requests of version {version}")


@pytest.fixture(scope="module")
def fleet(trained_run, shuffled_run, served_rows, tmp_path_factory, observability_rules):
    work = tmp_path_factory.mktemp("canary-fleet")
    base = trained_run.artifacts.bundle
    bundles = {
        "1": publish(base, work / "v1", "1"),
        "2": publish(base, work / "v2", "2"),
        "3": publish(base, work / "v3", "3", failing_on_batches(base)),
        "4": publish(base, work / "v4", "4"),
        "5": publish(shuffled_run.artifacts.bundle, work / "v5", "5"),
    }
    servers, proxy, prometheus = {}, None, None
    try:
        with ThreadPoolExecutor(len(bundles)) as pool:
            started = {
                v: pool.submit(start_model_server, d, work / f"server-{v}.log", timeout=120)
                for v, d in bundles.items()
            }
            servers = {v: f.result() for v, f in started.items()}
        proxy = SlowBodyProxy(servers["4"].http_port, DELAY_S)
        targets = [f"127.0.0.1:{s.http_port}" for s in servers.values()]
        prometheus = start_prometheus(targets, work / "prometheus", rule_files=(observability_rules,))
        # every server scraped once before any traffic: each series starts from its zero
        prometheus.wait_for(f"count(up == 1) == {len(targets)}")

        rng = random.Random(11)
        bodies = []
        for _ in range(REQUESTS_PER_VERSION + QUIET_REQUESTS):
            size = rng.randint(1, 6)
            start = rng.randrange(len(served_rows) - size)
            rows = [
                {**row, "PaymentMethod": "Bitcoin"} if rng.random() < 0.05 else row  # not a training category
                for row in served_rows[start : start + size]
            ]
            bodies.append(v2_request(FEATURES, rows))
        quiet, busy = bodies[:QUIET_REQUESTS], bodies[QUIET_REQUESTS:]
        for version in ("1", "2"):
            assert set(send(servers[version].url, quiet, 2)) == {200}
            wait_counted(prometheus, version, QUIET_REQUESTS)
        # increase() extrapolates to the window's end by up to 1.1 scrape intervals: over only two
        # samples that doubles 10 requests (CI read 20). Five samples bound it to 1.1/4 more.
        sampled = f'min(count_over_time({REQUESTS}{{registry_version=~"1|2"}}[2m])) >= {QUIET_SAMPLES}'
        prometheus.wait_for(sampled)
        quiet_at = time.time()

        urls = {v: s.url for v, s in servers.items()} | {"4": proxy.url}
        threads = {"4": 8}
        with ThreadPoolExecutor(len(urls)) as pool:
            running = {v: pool.submit(send, url, busy, threads.get(v, 2)) for v, url in urls.items()}
            statuses = {v: f.result() for v, f in running.items()}
        for version in urls:
            wait_counted(prometheus, version, len(busy) + (QUIET_REQUESTS if version in "12" else 0))
        yield Fleet(prometheus, servers, proxy, quiet_at, statuses)
    finally:
        if prometheus is not None:
            prometheus.stop()
        if proxy is not None:
            proxy.stop()
        for server in servers.values():
            server.stop()


def _failed(verdict) -> set[str]:
    return {c.check for c in verdict.failed}


def test_good_canary_is_promoted(fleet):
    verdict = fleet.verdict("2")
    assert verdict.decision == PROMOTE, verdict.table()
    js = next(c for c in verdict.checks if c.check == "score distribution (JS distance)")
    # the same model on the same requests: only increase()'s extrapolation over scrape times differs
    assert js.value < 0.01


def test_erroring_canary_is_rolled_back(fleet):
    assert 500 in fleet.statuses["3"] and 200 in fleet.statuses["3"]  # the graph really fails
    verdict = fleet.verdict("3")
    assert verdict.decision == ROLLBACK, verdict.table()
    assert {"error rate (5xx)", "ONNX Runtime failures"} <= _failed(verdict)
    error = next(c for c in verdict.checks if c.check == "error rate (5xx)")
    assert error.stable == 0.0 and error.canary > 0.5


def test_latency_is_judged_only_on_enough_answered_requests(fleet):
    """Canary 3 answers only its ~40 one-row requests (2xx): a p99 of 40 answers is their maximum,
    noise that must not judge it. The error checks judge all its requests; latency waits."""
    answered = fleet.statuses["3"].count(200)
    assert 0 < answered < CONFIG.min_requests <= len(fleet.statuses["3"])
    verdict = fleet.verdict("3")
    latency = [c for c in verdict.checks if c.check in {"p95 latency (s)", "p99 latency (s)"}]
    assert [c.passed for c in latency] == [None, None], verdict.table()
    found = re.search(r"canary has (\d+) of 200 answered \(2xx\) requests", latency[0].detail)
    assert found, latency[0].detail
    assert answered <= int(found.group(1)) < 2 * answered + 10  # increase() extrapolates a little
    assert "stable has" not in latency[0].detail  # stable answered all of its requests


def test_slow_canary_is_rolled_back_on_latency_alone(fleet):
    verdict = fleet.verdict("4")
    assert verdict.decision == ROLLBACK, verdict.table()
    assert _failed(verdict) == {"p95 latency (s)", "p99 latency (s)"}
    p99 = next(c for c in verdict.checks if c.check == "p99 latency (s)")
    assert p99.canary >= DELAY_S


def test_canary_that_answers_differently_is_rolled_back_on_behaviour_alone(fleet):
    verdict = fleet.verdict("5")
    assert verdict.decision == ROLLBACK, verdict.table()
    assert _failed(verdict) and _failed(verdict) <= BEHAVIOUR
    assert all(c.passed for c in verdict.checks if c.check in SERVING), verdict.table()
    assert "score distribution (JS distance)" in _failed(verdict)


def test_too_little_traffic_holds_with_the_count_it_waits_for(fleet):
    verdict = fleet.verdict("2", at=fleet.quiet_at)
    assert verdict.decision == HOLD, verdict.table()
    assert all(c.passed is None for c in verdict.checks)
    # increase() extrapolates to the window's end, so 10 requests may read as a few more (see fleet)
    waiting = r"stable has (\d+) of 200 requests, canary has (\d+) of 200 requests"
    counts = re.search(waiting, verdict.reasons[0])
    assert counts, verdict.reasons
    most = QUIET_REQUESTS * (1 + 1.1 / (QUIET_SAMPLES - 1))
    assert all(QUIET_REQUESTS <= int(n) <= most for n in counts.groups()), verdict.reasons


def test_a_version_prometheus_never_saw_holds(fleet):
    verdict = fleet.verdict("99")
    assert verdict.decision == HOLD and "canary has 0 of 200 requests" in verdict.reasons[0]


def test_an_unreachable_prometheus_raises_instead_of_holding(fleet):
    dead = PrometheusClient("http://127.0.0.1:9", timeout_s=2)
    with pytest.raises(PrometheusError, match=r"cannot query Prometheus at http://127\.0\.0\.1:9"):
        analyze(dead, VersionRef("1"), VersionRef("2"), CONFIG)
    with pytest.raises(PrometheusError, match="answered 400"):
        fleet.client.query("sum(")


def _answer(fleet, promql: str) -> list[dict]:
    return fleet.client.query(promql)


def test_every_dashboard_query_runs_and_shows_the_traffic(fleet):
    from tests.support.observability import dashboard_queries

    empty = []
    for title, promql in dashboard_queries():
        result = _answer(fleet, promql)  # raises PrometheusError on a query Prometheus refuses
        # nothing was dropped: that one stays empty; the monitor's panels show the monitor's gauges
        if not result and "dropped" not in promql and "churn_monitor_" not in promql:
            empty.append((title, promql))
    assert not empty, f"panels without data after the traffic: {empty}"
    share = _answer(fleet, dashboard_queries()[1][1])  # canary share: five versions, ~1/5 each
    assert {r["metric"]["registry_version"] for r in share} == {"1", "2", "3", "4", "5"}


def test_every_alert_expression_runs_and_the_canary_alerts_see_the_bad_canaries(fleet):
    from tests.support.observability import rules

    for rule in rules():
        _answer(fleet, rule["expr"])  # raises PrometheusError on a query Prometheus refuses
    errors = {
        r["metric"]["registry_version"]: float(r["value"][1])
        for r in _answer(fleet, "churn:request_errors:ratio_rate5m")
    }
    assert errors["3"] > 0.5 and errors["1"] == 0.0
    worse = next(r for r in rules() if r.get("alert") == "ChurnCanaryErrorsAboveStable")["expr"]
    assert {r["metric"]["registry_version"] for r in _answer(fleet, worse)} == {"3"}
    slower = next(r for r in rules() if r.get("alert") == "ChurnCanarySlowerThanStable")["expr"]
    p99 = {
        r["metric"]["registry_version"]: r["value"][1]
        for r in _answer(fleet, "churn:request_latency_seconds:p99_rate5m")
    }
    assert {r["metric"]["registry_version"] for r in _answer(fleet, slower)} == {"4"}, p99
    # version 3 answers only its 1-row requests: too few for a p99 to be more than their maximum
    answered = {
        r["metric"]["registry_version"]: float(r["value"][1])
        for r in _answer(fleet, "churn:answered_requests:increase5m")
    }
    assert answered["3"] < 100 <= min(v for k, v in answered.items() if k != "3"), answered
    diverge = next(r for r in rules() if r.get("alert") == "ChurnVersionsScoreDiverge")["expr"]
    assert _answer(fleet, diverge)  # version 5's scores differ from the others'
    assert not _answer(fleet, next(r for r in rules() if r.get("alert") == "ChurnModelNotReady")["expr"])
