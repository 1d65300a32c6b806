"""Canary analysis from Prometheus: the canary version against the stable one, over the same window.

Every series is the model server's own (:mod:`serving.metrics`), selected by the version labels
the server puts on it (``model_name``, ``registry_version``), so it works in every KServe mode and
never relies on Knative's ``revision_request_count`` (gone in Knative 1.19+). All queries are
evaluated at one instant over one window, so both versions are judged on the same minutes.

Checks (each row of the verdict):

- error rate (5xx answers / inference requests) and ONNX Runtime failures (requests the graph
  failed on / requests): canary at most ``max_error_rate_increase`` above stable;
- p95 and p99 latency of answered (2xx) requests: canary at most ``max_latency_ratio`` x stable
  + ``latency_slack_s`` (the slack keeps sub-millisecond noise from failing a canary);
- score distribution: Jensen-Shannon distance (base 2, :func:`scipy.spatial.distance.jensenshannon`)
  between the two versions' ``churn_prediction_score`` histograms, at most ``max_score_js``;
- positive rate (churn predictions / scored rows): absolute difference at most ``max_positive_rate_diff``;
- unknown-category rate (values not among the training categories / scored rows): canary at most
  ``max_unknown_rate_increase`` above stable.

A check whose versions have fewer than ``min_requests`` requests (latency checks: fewer than
``min_requests`` answered (2xx) requests, since a quantile of a few answers is their maximum;
behaviour checks: fewer than ``min_rows`` scored rows) in the window is not judged: it waits, the
verdict is ``hold`` unless another check fails, and its reason names the count it waits for. A
canary with no data is a hold, never a pass or a halt.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.distance import jensenshannon

from components.errors import ChurnError
from components.rollout.bounds import number, whole
from components.rollout.prometheus import PrometheusClient
from components.rollout.verdict import CANARY, Check, Verdict, judged

DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")

# The series the checks read (names owned by serving.metrics; the Prometheus exposition adds the
# _total / _bucket / _count suffixes).
REQUESTS = "churn_request_duration_seconds_count"
LATENCY = "churn_request_duration_seconds_bucket"
OUTCOMES = "churn_requests_total"
ROWS = "churn_rows_total"
POSITIVES = "churn_positive_predictions_total"
SCORES = "churn_prediction_score_bucket"
UNKNOWN = "churn_unknown_categories_total"


class AnalysisConfigError(ChurnError, ValueError):
    """A bound or the window of the canary analysis is unusable; the message names the field."""


@dataclass(frozen=True)
class AnalysisConfig:
    """Bounds of the canary analysis (see the module docstring for what each check compares)."""

    window: str = "5m"
    min_requests: int = 200
    min_rows: int = 500
    max_error_rate_increase: float = 0.005
    max_latency_ratio: float = 1.5
    latency_slack_s: float = 0.010
    max_score_js: float = 0.1
    max_positive_rate_diff: float = 0.05
    max_unknown_rate_increase: float = 0.01

    def __post_init__(self) -> None:
        if not isinstance(self.window, str) or not DURATION.match(self.window):
            raise AnalysisConfigError(
                f"AnalysisConfig.window must be a Prometheus duration such as 5m or 90s, got {self.window!r}"
            )
        for name in ("min_requests", "min_rows"):
            object.__setattr__(
                self, name, whole(f"AnalysisConfig.{name}", getattr(self, name), AnalysisConfigError)
            )
        for name in (
            "max_error_rate_increase", "max_latency_ratio", "latency_slack_s", "max_score_js",
            "max_positive_rate_diff", "max_unknown_rate_increase",
        ):  # fmt: skip
            number(f"AnalysisConfig.{name}", getattr(self, name), AnalysisConfigError)
        if self.max_latency_ratio < 1:
            raise AnalysisConfigError(
                f"AnalysisConfig.max_latency_ratio must be >= 1 (canary no slower than stable), "
                f"got {self.max_latency_ratio!r}"
            )


@dataclass(frozen=True)
class VersionRef:
    """One model version's series: ``model_name`` and ``registry_version`` labels, plus ``matchers``.

    ``matchers`` are label equalities both versions share (``{"namespace": "churn-prod"}``), so
    another environment's servers of the same version never enter the numbers.
    """

    registry_version: str
    model_name: str = "churn"
    matchers: dict[str, str] = field(default_factory=dict)

    def selector(self, **extra: str) -> str:
        """The PromQL label matchers, ``{model_name="churn",registry_version="4",...}``."""
        version = {"model_name": self.model_name, "registry_version": str(self.registry_version)}
        labels = {**self.matchers, **version, **extra}
        for name in labels:
            if not LABEL_NAME.match(name):
                raise AnalysisConfigError(f"label name {name!r} is not a Prometheus label name")
        return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


def analyze(
    prometheus: PrometheusClient,
    stable: VersionRef,
    canary: VersionRef,
    config: AnalysisConfig | None = None,
    at: float | None = None,
) -> Verdict:
    """The canary verdict of ``canary`` against ``stable`` over ``config.window`` ending at ``at`` (now)."""
    config = config or AnalysisConfig()
    at = time.time() if at is None else at
    window = config.window
    ask = _Asker(prometheus, at, window)
    versions = (("stable", stable), ("canary", canary))
    requests = {v: ask.total(REQUESTS, ref) for v, ref in versions}
    answered = {v: ask.total(REQUESTS, ref, code="2xx") for v, ref in versions}
    rows = {v: ask.total(ROWS, ref, outcome="ok") for v, ref in versions}
    wait_requests = _waiting(requests, config.min_requests, "requests", window)
    wait_answered = _waiting(answered, config.min_requests, "answered (2xx) requests", window)
    wait_rows = _waiting(rows, config.min_rows, "scored rows", window)

    checks = [
        _increase_check(
            "error rate (5xx)",
            *(ask.ratio(REQUESTS, ref, REQUESTS, code="5xx") for ref in (stable, canary)),
            config.max_error_rate_increase,
            wait_requests,
        ),
        _increase_check(
            "ONNX Runtime failures",
            *(ask.ratio(OUTCOMES, ref, OUTCOMES, outcome="error") for ref in (stable, canary)),
            config.max_error_rate_increase,
            wait_requests,
        ),
    ]
    for quantile in (0.95, 0.99):
        checks.append(
            _latency_check(
                f"p{round(quantile * 100)} latency (s)",
                *(ask.quantile(quantile, ref) for ref in (stable, canary)),
                config,
                wait_answered,
            )
        )
    checks.append(
        _score_check(ask.buckets(SCORES, stable), ask.buckets(SCORES, canary), config.max_score_js, wait_rows)
    )
    scored = {"outcome": "ok"}
    positive = (ask.ratio(POSITIVES, ref, ROWS, denominator_labels=scored) for ref in (stable, canary))
    checks.append(_difference_check(*positive, config.max_positive_rate_diff, wait_rows))
    checks.append(
        _increase_check(
            "unknown-category rate",
            *(ask.ratio(UNKNOWN, ref, ROWS, denominator_labels=scored) for ref in (stable, canary)),
            config.max_unknown_rate_increase,
            wait_rows,
        )
    )
    described = (
        f"last {window} to {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(at))}; requests "
        f"stable {_count(requests['stable'])}, canary {_count(requests['canary'])}"
    )
    return judged(CANARY, stable.registry_version, canary.registry_version, checks, described)


class _Asker:
    """The PromQL of the checks, all at one instant over one window."""

    def __init__(self, prometheus: PrometheusClient, at: float, window: str):
        self.prometheus, self.at, self.window = prometheus, at, window

    def _increase(self, series: str, ref: VersionRef, **labels: str) -> str:
        return f"sum(increase({series}{ref.selector(**labels)}[{self.window}]))"

    def total(self, series: str, ref: VersionRef, **labels: str) -> float:
        return self.prometheus.value(self._increase(series, ref, **labels), self.at) or 0.0

    def ratio(
        self,
        numerator: str,
        ref: VersionRef,
        denominator: str,
        denominator_labels: dict[str, str] | None = None,
        **labels: str,
    ) -> float | None:
        """increase(numerator{labels}) / increase(denominator); None without a denominator.

        A numerator with no series at all (no 5xx ever answered) is 0 of the denominator.
        """
        below = self.total(denominator, ref, **(denominator_labels or {}))
        if below <= 0:
            return None
        return self.total(numerator, ref, **labels) / below

    def quantile(self, q: float, ref: VersionRef) -> float | None:
        promql = (
            f"histogram_quantile({q}, sum by (le) (rate({LATENCY}{ref.selector(code='2xx')}[{self.window}])))"
        )
        return self.prometheus.value(promql, self.at)

    def buckets(self, series: str, ref: VersionRef) -> dict[float, float]:
        """Cumulative bucket counts over the window, keyed by the bucket's upper bound."""
        promql = f"sum by (le) (increase({series}{ref.selector()}[{self.window}]))"
        return {float(le): count for le, count in self.prometheus.by_label(promql, "le", self.at).items()}


def _waiting(counts: dict[str, float], minimum: int, what: str, window: str) -> str:
    """Why the checks on these counts wait ("" when both versions have enough)."""
    short = [f"{v} has {_count(n)} of {minimum} {what}" for v, n in counts.items() if n < minimum]
    return f"waiting: {', '.join(short)} in the last {window}" if short else ""


def _increase_check(
    name: str,
    stable: float | None,
    canary: float | None,
    allowed: float,
    waiting: str,
) -> Check:
    bound = f"<= stable + {allowed:g}"
    if waiting:
        return Check(name, stable, canary, None, bound, None, waiting)
    if stable is None or canary is None:
        return Check(name, stable, canary, None, bound, None, "waiting: no requests counted for a version")
    value = canary - stable
    return Check(name, stable, canary, value, bound, value <= allowed + 1e-12)


def _latency_check(
    name: str, stable: float | None, canary: float | None, config: AnalysisConfig, waiting: str
) -> Check:
    rule = f"{config.max_latency_ratio:g}x stable + {config.latency_slack_s:g} s"
    if waiting or stable is None or canary is None:
        why = waiting or "waiting: no answered (2xx) requests in the latency histogram"
        return Check(name, stable, canary, None, f"<= {rule}", None, why)
    limit = config.max_latency_ratio * stable + config.latency_slack_s
    return Check(name, stable, canary, canary, f"<= {limit:.4g} ({rule})", canary <= limit)


def _score_check(
    stable: dict[float, float], canary: dict[float, float], allowed: float, waiting: str
) -> Check:
    name, bound = "score distribution (JS distance)", f"<= {allowed:g}"
    if waiting:
        return Check(name, None, None, None, bound, None, waiting)
    if set(stable) != set(canary):
        return Check(
            name, None, None, None, bound, False,
            f"the versions' score histograms have different buckets ({sorted(stable)} vs {sorted(canary)})",
        )  # fmt: skip
    bounds = sorted(stable)
    p, q = (np.diff([0.0, *(max(h[b], 0.0) for b in bounds)]).clip(min=0) for h in (stable, canary))
    if p.sum() <= 0 or q.sum() <= 0:
        return Check(name, None, None, None, bound, None, "waiting: a version has no scored rows")
    distance = float(jensenshannon(p / p.sum(), q / q.sum(), base=2))
    return Check(name, _median(bounds, p), _median(bounds, q), distance, bound, distance <= allowed)


def _difference_check(stable: float | None, canary: float | None, allowed: float, waiting: str) -> Check:
    name, bound = "positive rate", f"|canary - stable| <= {allowed:g}"
    if waiting or stable is None or canary is None:
        return Check(name, stable, canary, None, bound, None, waiting or "waiting: no scored rows")
    value = canary - stable
    return Check(name, stable, canary, value, bound, abs(value) <= allowed + 1e-12)


def _median(bounds: list[float], counts: np.ndarray) -> float:
    """Upper bound of the bucket holding the median score (shown as the stable/canary columns)."""
    cumulative = np.cumsum(counts)
    return bounds[int(np.searchsorted(cumulative, cumulative[-1] / 2))]


def _count(value: float) -> str:
    return f"{value:.0f}"


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"')
