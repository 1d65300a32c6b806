"""``run_monitor``: one window of the payload log against a version's reference -> checks and alerts.

Checks, each with a level (``ok``, ``warn``, ``alert``, ``not_enough_data``) and a reason in words:

- ``data_drift`` per feature: PSI and KL on the reference's quantile bins, the Jensen-Shannon
  distance for categoricals, a two-sample KS test (numerics) or chi-square test (categoricals);
- ``unknown_categories`` per categorical feature: values outside the schema, counted;
- ``prediction_drift``: Jensen-Shannon distance and PSI of the score deciles, positive-rate change;
- ``performance_estimate``: CBPE (label-free) ROC AUC with its interval vs the reference's AUC;
- with labels, ``live_accuracy`` (realised AUC, calibration, precision/recall, profit vs the
  training-time figures) and ``reconciliation`` (realised vs estimated on the same rows).

Alerts are on effect size, not on p-values alone: with a million rows every feature "drifts" by
p-value. A drift check alerts only when its effect size crosses its bound (PSI 0.25 alert / 0.1
warn, JS distance 0.1) AND its test stays significant after correcting for the number of tests
(Benjamini-Hochberg or Holm). Below ``min_rows`` the answer is "not enough data (N < M)".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from itertools import pairwise

import numpy as np
import pyarrow as pa

from components import reference as ref_format
from components import schema
from components.config import ConfigError, Settings
from components.errors import ChurnError
from components.monitoring import cbpe, stats
from components.monitoring.labels import Labels, join, read_labels
from components.monitoring.window import SCORE, Accumulator, WindowCounts, read_window
from components.reference import Reference

log = logging.getLogger(__name__)

OK, WARN, ALERT, NOT_ENOUGH = "ok", "warn", "alert", "not_enough_data"
_SEVERITY = {OK: 0, NOT_ENOUGH: 1, WARN: 2, ALERT: 3}
CONCEPT_DRIFT_NOTE = (
    "the label-free estimate alone could not see this: it assumes the score-to-churn relation the "
    "model learned, which is what changed"
)


class MonitorError(ChurnError, RuntimeError):
    """The monitor cannot run (nothing in the window, unusable inputs); the message says what to do."""


@dataclass(frozen=True)
class MonitorConfig:
    """Alert bounds and sizes; the defaults are the usual rules of thumb."""

    psi_warn: float = 0.1
    psi_alert: float = 0.25
    js_alert: float = 0.1
    alpha: float = 0.01  # after correction
    correction: str = "bh"  # "bh" (Benjamini-Hochberg) or "holm"
    min_rows: int = 500
    min_labelled: int = 200
    unknown_warn: float = 0.01  # share of a feature's values outside the schema
    unknown_alert: float = 0.05
    max_positive_rate_change: float = 0.10  # absolute
    max_auc_drop: float = 0.05  # vs the reference's realised ROC AUC
    max_calibration_increase: float = 0.05  # ECE above the reference's
    min_gap: float = 0.02  # reconciliation: smallest |realised - estimated| that alerts
    sample_size: int = 10_000  # reservoir for KS
    level: float = cbpe.LEVEL
    season_offset: timedelta | None = None  # compare with the same window this long before
    seed: int = 0

    def __post_init__(self):
        if not 0 < self.psi_warn <= self.psi_alert:
            raise ConfigError(f"need 0 < psi_warn <= psi_alert, got {self.psi_warn} and {self.psi_alert}")
        if not 0 < self.alpha < 1:
            raise ConfigError(f"alpha must be in (0, 1), got {self.alpha}")
        if self.correction not in ("bh", "holm"):
            raise ConfigError(f"correction must be 'bh' or 'holm', got {self.correction!r}")
        if self.min_rows < 1 or self.min_labelled < 1 or self.sample_size < 100:
            raise ConfigError("min_rows and min_labelled must be >= 1 and sample_size >= 100")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["season_offset"] = self.season_offset.total_seconds() if self.season_offset else None
        return out


@dataclass
class Check:
    """One check's verdict: ``reason`` says in words why (thresholds and values included)."""

    check: str
    feature: str | None
    level: str
    reason: str
    values: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.check}:{self.feature}" if self.feature else self.check


@dataclass
class MonitorResult:
    """What one monitor run found; :meth:`to_dict` is the JSON output."""

    model: dict  # the version's identity the reference belongs to
    window: dict
    rows: int
    baseline: str  # what the window was compared with
    checks: list[Check]
    features: dict[str, dict]  # per feature: reference and current shares for plots
    prediction: dict
    estimate: dict | None
    estimate_over_time: list[dict]
    live: dict | None
    reconciliation: dict | None
    config: dict
    messages: list[str]

    @property
    def status(self) -> str:
        """The worst level of any check."""
        return max((c.level for c in self.checks), key=_SEVERITY.__getitem__, default=OK)

    @property
    def alerts(self) -> list[Check]:
        """Checks at ``warn`` or ``alert`` (``level`` tells which)."""
        return [c for c in self.checks if c.level in (WARN, ALERT)]

    def alerted(self, check: str | None = None, level: str = ALERT) -> set[str]:
        """Features (or check names) at ``level``, optionally of one ``check`` kind."""
        return {
            c.feature or c.check
            for c in self.checks
            if c.level == level and (check is None or c.check == check)
        }

    def to_dict(self) -> dict:
        return {
            "status": self.status,
            "model": self.model,
            "window": self.window,
            "rows": self.rows,
            "baseline": self.baseline,
            "alerts": [asdict(c) for c in self.alerts],
            "checks": [asdict(c) for c in self.checks],
            "features": self.features,
            "prediction": self.prediction,
            "estimate": self.estimate,
            "estimate_over_time": self.estimate_over_time,
            "live": self.live,
            "reconciliation": self.reconciliation,
            "config": self.config,
            "messages": self.messages,
        }


@dataclass(frozen=True)
class Baseline:
    """What a window is compared with: the version's reference, or the same season's window."""

    label: str
    rows: int
    numeric: dict[str, np.ndarray]
    categorical: dict[str, np.ndarray]  # per category, then unknown
    score: np.ndarray
    sample: dict[str, np.ndarray]
    positive_rate: float

    @classmethod
    def of_reference(cls, ref: Reference) -> Baseline:
        return cls(
            label=f"reference ({ref.source}, {ref.rows:,} rows)",
            rows=ref.rows,
            numeric={n: np.asarray(r.counts) for n, r in ref.numeric.items()},
            categorical={n: np.asarray([*r.counts, r.unknown]) for n, r in ref.categorical.items()},
            score=np.asarray(ref.score.counts),
            sample={
                **{n: np.asarray(r.sample) for n, r in ref.numeric.items()},
                SCORE: np.asarray(ref.score.sample),
            },
            positive_rate=ref.score.positive_rate,
        )

    @classmethod
    def of_window(cls, counts: WindowCounts, label: str) -> Baseline:
        return cls(
            label=label,
            rows=counts.rows,
            numeric={n: c.counts for n, c in counts.numeric.items()},
            categorical={n: c.counts for n, c in counts.categorical.items()},
            score=counts.score_counts,
            sample=counts.sample,
            positive_rate=counts.positives / max(counts.rows, 1),
        )


def _iso(micros: int | None) -> str | None:
    return None if micros is None else datetime.fromtimestamp(micros / 1e6, timezone.utc).isoformat()


def _round(values: dict) -> dict:
    return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in values.items()}


def _drift_level(effect: float, warn: float, alert: float, significant: bool) -> str:
    if effect >= alert and significant:
        return ALERT
    if effect >= warn and significant:
        return WARN
    return OK


def _compare(kind: str, reference: np.ndarray, current: np.ndarray, test: str, test_result, **extra) -> dict:
    """Effect sizes of one binned comparison and its test's ``(statistic, p-value)``."""
    statistic, pvalue = test_result
    return {"kind": kind, "psi": stats.psi(reference, current), "kl": stats.kl(reference, current),
            "js": stats.js_distance(reference, current), "test": test, "statistic": statistic,
            "pvalue": pvalue, "n": int(current.sum()), **extra}  # fmt: skip


def _data_drift(ref: Reference, base: Baseline, cur: WindowCounts, config: MonitorConfig):
    """Per-feature statistics and the score's, with p-values corrected together."""
    rows = {}
    for name in schema.FEATURE_NAMES:
        if name in ref.numeric:
            c = cur.numeric[name].counts
            ks = stats.ks_test(base.sample[name], cur.sample[name]) if c.sum() else (0.0, 1.0)
            rows[name] = _compare(
                "numeric", base.numeric[name], c, "ks", ks, missing=cur.numeric[name].missing
            )
        else:
            r, c = base.categorical[name], cur.categorical[name].counts
            rows[name] = _compare("categorical", r, c, "chi2", stats.chi2_test(r, c), unknown=int(c[-1]))
    ks = stats.ks_test(base.sample[SCORE], cur.sample[SCORE])
    rows[SCORE] = _compare("score", base.score, cur.score_counts, "ks", ks)
    names = list(rows)
    for name, adjusted in zip(
        names, stats.adjust_pvalues([rows[n]["pvalue"] for n in names], config.correction), strict=True
    ):
        rows[name]["pvalue_adjusted"] = adjusted
    return rows


def _feature_checks(rows: dict, cur: WindowCounts, config: MonitorConfig) -> list[Check]:
    checks = []
    for name in schema.FEATURE_NAMES:
        s = rows[name]
        if s["n"] < config.min_rows:  # numerics: missing values do not count
            reason = f"not enough data (N = {s['n']:,} < {config.min_rows:,})"
            checks.append(Check("data_drift", name, NOT_ENOUGH, reason, _round(s)))
            continue
        significant = s["pvalue_adjusted"] < config.alpha
        p_text = (
            f"{s['test'].upper()} p = {s['pvalue']:.2g}, "
            f"{config.correction.upper()}-adjusted {s['pvalue_adjusted']:.2g}"
        )
        if s["kind"] == "numeric":
            level = _drift_level(s["psi"], config.psi_warn, config.psi_alert, significant)
            effect = f"PSI {s['psi']:.3f} (warn {config.psi_warn:g}, alert {config.psi_alert:g})"
        else:
            level = (
                ALERT
                if s["js"] >= config.js_alert and significant
                else (WARN if s["psi"] >= config.psi_warn and significant else OK)
            )
            effect = (
                f"JS distance {s['js']:.3f} (alert {config.js_alert:g}), "
                f"PSI {s['psi']:.3f} (warn {config.psi_warn:g})"
            )
        if level == OK and not significant and (s["psi"] >= config.psi_warn or s["js"] >= config.js_alert):
            reason = f"{effect}, but not significant ({p_text} >= {config.alpha:g})"
        elif level == OK:
            reason = f"{effect}, {p_text}: within bounds"
        else:
            reason = f"{effect}, {p_text} < {config.alpha:g}"
        checks.append(Check("data_drift", name, level, reason, _round(s)))
    for name, counts in cur.categorical.items():
        checks.append(_unknown_check(name, counts, config))
    return checks


def _unknown_check(name: str, counts, config: MonitorConfig) -> Check:
    total, unknown = int(counts.counts.sum()), int(counts.counts[-1])
    examples = ", ".join(f"{v!r} x{n:,}" for v, n in counts.unknown_values.most_common(3))
    values = {
        "unknown": unknown,
        "rows": total,
        "share": unknown / total if total else 0.0,
        "examples": dict(counts.unknown_values.most_common(10)),
    }
    if total and unknown == total:
        categories = list(schema.BY_NAME[name].categories)
        return Check(
            "unknown_categories",
            name,
            ALERT,
            f"all {total:,} values are unknown categories ({examples}), none of the schema's "
            f"{categories}: the model encodes them as all zeros; fix the client or the schema",
            values,
        )
    share = values["share"]
    if share >= config.unknown_alert or share >= config.unknown_warn:
        level = ALERT if share >= config.unknown_alert else WARN
        return Check(
            "unknown_categories",
            name,
            level,
            f"{unknown:,} of {total:,} values ({share:.1%}) are not schema categories ({examples})",
            values,
        )
    reason = f"{unknown:,} unknown value(s) of {total:,}" + (f" ({examples})" if unknown else "")
    return Check("unknown_categories", name, OK, reason, values)


def _prediction_checks(
    s: dict, base: Baseline, cur: WindowCounts, config: MonitorConfig
) -> tuple[list[Check], dict]:
    rate = cur.positives / cur.rows
    change = rate - base.positive_rate
    prediction = {
        **_round(s),
        "positive_rate": rate,
        "reference_positive_rate": base.positive_rate,
        "positive_rate_change": change,
        "mean_score": float(cur.cbpe_sums.sum() / cur.rows),
    }
    significant = s["pvalue_adjusted"] < config.alpha
    level = (
        ALERT
        if s["js"] >= config.js_alert and significant
        else (WARN if s["psi"] >= config.psi_warn and significant else OK)
    )
    checks = [
        Check(
            "prediction_drift",
            "score",
            level,
            f"score JS distance {s['js']:.3f} (alert {config.js_alert:g}), PSI {s['psi']:.3f}, "
            f"KS p adjusted {s['pvalue_adjusted']:.2g}",
            _round(s),
        )
    ]
    level = ALERT if abs(change) >= config.max_positive_rate_change else OK
    checks.append(
        Check(
            "prediction_drift",
            "positive_rate",
            level,
            f"positive rate {rate:.3f} vs {base.positive_rate:.3f} ({change:+.3f}; bound "
            f"±{config.max_positive_rate_change:g})",
            {"rate": rate, "change": change},
        )
    )
    return checks, prediction


def _estimate_check(ref: Reference, est: cbpe.Estimate, config: MonitorConfig) -> Check:
    ref_auc = ref.metrics["roc_auc"]
    values = {
        "estimated_roc_auc": est.roc_auc.value,
        "low": est.low,
        "high": est.high,
        "reference_roc_auc": ref_auc,
    }
    ece = ref.cbpe["expected_calibration_error"]
    caveat = (
        f"; caution: the scores were not calibrated on the reference (ECE {ece:.3f}), "
        "so the estimate is biased"
        if ece > config.max_calibration_increase
        else ""
    )
    if est.high < ref_auc - config.max_auc_drop:
        return Check(
            "performance_estimate",
            None,
            ALERT,
            f"estimated ROC AUC {est.roc_auc.value:.3f} [{est.low:.3f}, {est.high:.3f}] is more than "
            f"{config.max_auc_drop:g} below the reference's {ref_auc:.3f}{caveat}",
            values,
        )
    return Check(
        "performance_estimate",
        None,
        OK,
        f"estimated ROC AUC {est.roc_auc.value:.3f} [{est.low:.3f}, {est.high:.3f}] "
        f"(reference {ref_auc:.3f}){caveat}",
        values,
    )


def _periods(
    hourly: dict[int, tuple[np.ndarray, np.ndarray]],
    threshold: float,
    config: MonitorConfig,
    joined=None,
    most: int = 12,
) -> list[dict]:
    """Estimated (and, with labels, realised) ROC AUC over time, hours merged into <= ``most`` periods."""
    if not hourly:
        return []
    hours = sorted(hourly)
    groups = np.array_split(np.array(hours), min(most, len(hours)))
    out = []
    for group in groups:
        counts = sum(hourly[h][0] for h in group)
        sums = sum(hourly[h][1] for h in group)
        start, end = int(group[0]) * 3600, (int(group[-1]) + 1) * 3600
        item = {
            "start": datetime.fromtimestamp(start, timezone.utc).isoformat(),
            "end": datetime.fromtimestamp(end, timezone.utc).isoformat(),
            "rows": int(counts.sum()),
        }
        if counts.sum() >= config.min_rows:
            e = cbpe.estimate(counts, sums, threshold, level=config.level, seed=config.seed)
            item.update(estimated_roc_auc=e.roc_auc.value, low=e.low, high=e.high)
        if joined is not None and len(joined):
            ts = joined["timestamp"].to_numpy() // 1_000_000
            part = joined[(ts >= start) & (ts < end)]
            if len(part) >= config.min_labelled and part["label"].nunique() == 2:
                from sklearn.metrics import roc_auc_score

                item.update(
                    realised_roc_auc=float(roc_auc_score(part["label"], part["score"])), labelled=len(part)
                )
        out.append(item)
    return out


def _live(
    ref: Reference, joined, labels: Labels, config: MonitorConfig
) -> tuple[list[Check], dict, dict | None]:
    n = len(joined)
    live = {"labels": len(labels.key), "joined": n, "unmatched": len(labels.key) - n, "source": labels.source}
    classes = int(joined["label"].nunique()) if n else 0
    if n < config.min_labelled or classes < 2:
        why = (
            f"not enough data (N = {n:,} labelled rows joined < {config.min_labelled:,})"
            if n < config.min_labelled
            else f"all {n:,} joined labels are one class: no AUC"
        )
        return [Check("live_accuracy", None, NOT_ENOUGH, why, live)], live, None
    y, p = joined["label"].to_numpy().astype(np.int64), joined["score"].to_numpy()
    realised = ref_format.realised_metrics(y, p, ref.threshold, ref.business)
    live["metrics"] = realised
    live["reference"] = {k: ref.metrics.get(k) for k in realised}
    checks = []
    drop = ref.metrics["roc_auc"] - realised["roc_auc"]
    checks.append(
        Check(
            "live_accuracy",
            "roc_auc",
            ALERT if drop > config.max_auc_drop else OK,
            f"realised ROC AUC {realised['roc_auc']:.3f} vs {ref.metrics['roc_auc']:.3f} at training "
            f"(drop {drop:+.3f}, bound {config.max_auc_drop:g})",
            {"drop": drop},
        )
    )
    rise = realised["expected_calibration_error"] - ref.metrics["expected_calibration_error"]
    checks.append(
        Check(
            "live_accuracy",
            "calibration",
            ALERT if rise > config.max_calibration_increase else OK,
            f"calibration error {realised['expected_calibration_error']:.3f} vs "
            f"{ref.metrics['expected_calibration_error']:.3f} at training "
            f"(bound +{config.max_calibration_increase:g}); "
            f"churn rate {realised['churn_rate']:.3f} vs mean score {realised['mean_score']:.3f}",
            {"rise": rise},
        )
    )
    checks.append(
        Check(
            "live_accuracy",
            "precision_recall",
            OK,
            f"at threshold {ref.threshold:.2f}: precision {realised['precision']:.3f} "
            f"(training {ref.metrics['precision']:.3f}), recall {realised['recall']:.3f} "
            f"(training {ref.metrics['recall']:.3f}); profit per customer "
            f"{realised['profit_per_customer']:.2f} (training {ref.metrics['profit_per_customer']:.2f})",
            {k: realised[k] for k in ("precision", "recall", "profit_per_customer")},
        )
    )
    est = cbpe.estimate(*cbpe.histogram(p), ref.threshold, level=config.level, seed=config.seed)
    recon = {"rows": n, "level": config.level, "metrics": {}}
    for metric in ("roc_auc", "churn_rate", "precision", "recall"):
        interval: cbpe.Interval = getattr(est, metric)
        actual = realised[metric]
        gap = actual - interval.value
        outside = not interval.contains(actual) and abs(gap) >= config.min_gap
        recon["metrics"][metric] = {
            "estimated": interval.value,
            "low": interval.low,
            "high": interval.high,
            "realised": actual,
            "gap": gap,
            "outside": outside,
        }
        level = ALERT if outside else OK
        reason = (
            f"realised {metric} {actual:.3f} vs estimated {interval.value:.3f} "
            f"[{interval.low:.3f}, {interval.high:.3f}] on the same {n:,} rows (gap {gap:+.3f})"
        )
        if outside:
            reason += f": concept drift; {CONCEPT_DRIFT_NOTE}"
        checks.append(Check("reconciliation", metric, level, reason, recon["metrics"][metric]))
    recon["concept_drift"] = any(m["outside"] for m in recon["metrics"].values())
    if recon["concept_drift"]:
        recon["note"] = CONCEPT_DRIFT_NOTE
    return checks, live, recon


def run_monitor(
    log_uri: str,
    reference: Reference,
    *,
    settings: Settings,
    config: MonitorConfig | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    labels: str | Labels | None = None,
    key_column: str = "request_id",
    model: dict | None = None,
    progress: Callable[[str], None] | None = None,
) -> MonitorResult:
    """Monitor the payload log at ``log_uri`` (folder, file or ``s3://`` prefix) in ``[since, until)``.

    ``reference`` is the serving version's (:func:`components.reference.load`); ``labels`` a
    labels file URI (or loaded :class:`Labels`) joined on the log's ``key_column``; ``model`` the
    version identity recorded in the result. :class:`MonitorError` when the window is empty.
    """
    config = config or MonitorConfig()
    label_data = read_labels(labels, settings) if isinstance(labels, str) else labels
    keys = pa.array(np.unique(label_data.key).tolist(), pa.string()) if label_data is not None else None
    acc = Accumulator(reference, config.sample_size, config.seed, keys, key_column)
    cur = read_window(log_uri, settings, acc, since, until, progress)
    window = {
        "log": log_uri,
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "first": _iso(cur.first),
        "last": _iso(cur.last),
        "files": cur.files,
        "row_groups": cur.row_groups,
        "skipped_row_groups": cur.skipped_row_groups,
    }
    if cur.rows == 0:
        raise MonitorError(
            f"empty window: no payload-log rows in {log_uri} between {window['since'] or 'the start'} and "
            f"{window['until'] or 'now'} ({cur.files} file(s) read); "
            "widen --since/--until or check the log URI"
        )
    messages = [f"{cur.rows:,} rows served in the window"]
    served = sorted(cur.versions.items(), key=lambda kv: -kv[1])
    if len(served) > 1:
        messages.append(
            "the window mixes model versions: "
            + ", ".join(f"{v[0]} ({n:,} rows)" for v, n in served)
            + "; compared with one reference"
        )
    base = Baseline.of_reference(reference)
    if config.season_offset:
        lo, hi = (
            since - config.season_offset if since else None,
            until - config.season_offset if until else None,
        )
        if lo is None or hi is None:
            raise ConfigError("a same-season comparison needs both --since and --until")
        season_acc = Accumulator(reference, config.sample_size, config.seed + 1)
        season = read_window(log_uri, settings, season_acc, lo, hi)
        if season.rows < config.min_rows:
            messages.append(
                f"same-season window {lo.isoformat()}..{hi.isoformat()} has {season.rows:,} rows "
                f"(< {config.min_rows:,}): compared with the version's reference instead"
            )
        else:
            base = Baseline.of_window(
                season, f"same season: {lo.isoformat()} .. {hi.isoformat()} ({season.rows:,} rows)"
            )
    if cur.rows < config.min_rows:
        checks = [
            Check(
                "window",
                None,
                NOT_ENOUGH,
                f"not enough data (N = {cur.rows:,} < {config.min_rows:,})",
                {"rows": cur.rows, "min_rows": config.min_rows},
            )
        ]
        return MonitorResult(
            model or {},
            window,
            cur.rows,
            base.label,
            checks,
            {},
            {},
            None,
            [],
            None,
            None,
            config.to_dict(),
            [*messages, checks[0].reason],
        )
    drift = _data_drift(reference, base, cur, config)
    checks = _feature_checks(drift, cur, config)
    prediction_checks, prediction = _prediction_checks(drift[SCORE], base, cur, config)
    checks += prediction_checks
    est = cbpe.estimate(
        cur.cbpe_counts, cur.cbpe_sums, reference.threshold, level=config.level, seed=config.seed
    )
    checks.append(_estimate_check(reference, est, config))
    live = recon = joined = None
    if label_data is not None:
        joined = join(label_data, cur.labelled)
        live_checks, live, recon = _live(reference, joined, label_data, config)
        checks += live_checks
    features = {}
    for name in schema.FEATURE_NAMES:
        if name in reference.numeric:
            r, c = base.numeric[name], cur.numeric[name].counts
            cuts = reference.numeric[name].cuts
            inner = [f"({a:.4g}, {b:.4g}]" for a, b in pairwise(cuts)]
            bins = [f"<= {cuts[0]:.4g}", *inner, f"> {cuts[-1]:.4g}"]
        else:
            r, c = base.categorical[name], cur.categorical[name].counts
            bins = [*reference.categorical[name].categories, ref_format.UNKNOWN]
        features[name] = {
            "bins": bins,
            "reference": stats.shares(r).tolist(),
            "current": stats.shares(c).tolist(),
            **_round(drift[name]),
        }
    prediction["histogram"] = {
        "reference": reference.score.histogram,
        "current": cur.score_histogram.tolist(),
    }
    over_time = _periods(cur.hourly, reference.threshold, config, joined)
    result = MonitorResult(
        model=model or {},
        window=window,
        rows=cur.rows,
        baseline=base.label,
        checks=checks,
        features=features,
        prediction=prediction,
        estimate={**est.to_dict(), "reference": reference.cbpe},
        estimate_over_time=over_time,
        live=live,
        reconciliation=recon,
        config=config.to_dict(),
        messages=messages,
    )
    log.info("monitor: %d rows, status %s, %d alert(s)", cur.rows, result.status, len(result.alerts))
    return result
