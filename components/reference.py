"""The monitoring reference of a model version: the one owner of ``reference.json``'s format.

Export computes it on the test split and writes it into the bundle (through
:func:`components.bundle.write`, which records its sha256); the monitor reads it back with
:func:`load`. It holds, for the rows the model was judged on:

- per numeric feature: quantile cut points (deciles of the test split, deduplicated, so an
  integer or 0/1 feature gets one bin per value) and the count per bin, plus a fixed-size sample
  of raw values for the two-sample KS test;
- per categorical feature: the count per schema category (values outside the schema are counted
  as ``unknown``);
- the score distribution of the EXPORTED ONNX graph (what serving returns: calibrated once the
  graph calibrates): decile cut points and counts, a fine histogram for plots, a sample;
- realised metrics on the test split at the version's threshold (ROC AUC, PR AUC, precision,
  recall, positive rate, profit per customer) and the business inputs they were computed with;
- what the label-free estimate (CBPE, :mod:`components.monitoring.cbpe`) needs: the estimate on
  the test split itself, its calibration error and reliability table, so the monitor can say
  how far the estimate is to be trusted.

Bins are the half-open intervals ``(cut[i-1], cut[i]]`` with an open bin below the first and
above the last cut: :func:`numeric_bins` is the one bin assignment, used here and by the monitor.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from components import bundle, schema
from components.errors import ChurnError

FORMAT = "churn-monitoring-reference"
FORMAT_VERSION = 1
QUANTILES = tuple(np.round(np.arange(0.1, 1.0, 0.1), 1))  # decile cut points
SAMPLE_SIZE = 5000  # raw values kept per numeric feature (and for scores) for the KS test
SCORE_HISTOGRAM_BINS = 50  # equal-width bins on [0, 1] for plots
RELIABILITY_BINS = 10
UNKNOWN = "__unknown__"


class ReferenceFormatError(ChurnError, ValueError):
    """A reference file is missing a field or does not match this format; the message names it."""


@dataclass(frozen=True)
class NumericReference:
    cuts: list[float]  # inner bin edges: bins (-inf, c0], (c0, c1], ..., (c_last, inf)
    counts: list[int]  # len(cuts) + 1
    missing: int
    sample: list[float]


@dataclass(frozen=True)
class CategoricalReference:
    categories: list[str]  # the schema's categories, in schema order
    counts: list[int]  # per category
    unknown: int  # values outside the schema (after the one normalisation)


@dataclass(frozen=True)
class ScoreReference:
    cuts: list[float]  # decile cut points of the test scores (same bin rule as numerics)
    counts: list[int]
    histogram: list[int]  # SCORE_HISTOGRAM_BINS equal-width bins on [0, 1]
    sample: list[float]
    positive_rate: float  # share of rows at or above the threshold
    mean: float


@dataclass(frozen=True)
class Reference:
    """The typed ``reference.json``."""

    rows: int
    source: str
    threshold: float
    numeric: dict[str, NumericReference]
    categorical: dict[str, CategoricalReference]
    score: ScoreReference
    metrics: dict[str, float]  # realised on the reference rows with the exported graph's scores
    business: dict[str, float]
    cbpe: dict  # estimate on the reference rows, calibration error, reliability table
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")) + "\n"


def numeric_bins(cuts: np.ndarray | list[float], values: np.ndarray) -> np.ndarray:
    """Bin index of each value: ``i`` for ``cuts[i-1] < v <= cuts[i]`` (0 below, len(cuts) above)."""
    return np.searchsorted(np.asarray(cuts, dtype=np.float64), values, side="left")


def numeric_cuts(values: np.ndarray) -> list[float]:
    """Decile cut points of ``values``, deduplicated (a 0/1 feature gets the cuts its values have)."""
    return [float(c) for c in np.unique(np.quantile(values, QUANTILES))]


def bin_counts(cuts: list[float], values: np.ndarray) -> np.ndarray:
    return np.bincount(numeric_bins(cuts, values), minlength=len(cuts) + 1)


def category_codes(feature: schema.Feature, values: np.ndarray) -> np.ndarray:
    """Index of each value among ``feature.categories``; ``len(categories)`` for unknown values.

    Values are normalised by the one rule (:func:`components.schema.normalise_category`), so a
    spelling serving accepted lands where serving scored it. Vectorised over the distinct values.
    """
    uniques, inverse = np.unique(np.asarray(values, dtype=object).astype(str), return_inverse=True)
    index = {c: i for i, c in enumerate(feature.categories)}
    codes = np.array(
        [index.get(schema.normalise_category(feature, u), len(feature.categories)) for u in uniques],
        dtype=np.int64,
    )
    return codes[inverse.reshape(-1)]


def score_histogram(scores: np.ndarray) -> np.ndarray:
    idx = np.clip((np.asarray(scores) * SCORE_HISTOGRAM_BINS).astype(np.int64), 0, SCORE_HISTOGRAM_BINS - 1)
    return np.bincount(idx, minlength=SCORE_HISTOGRAM_BINS)


def expected_calibration_error(
    y: np.ndarray, p: np.ndarray, bins: int = RELIABILITY_BINS
) -> tuple[float, list]:
    """ECE on equal-width bins, and the reliability table ``[{lo, hi, rows, mean_score, observed}]``."""
    idx = np.clip((p * bins).astype(np.int64), 0, bins - 1)
    table, ece = [], 0.0
    for b in range(bins):
        mask = idx == b
        if not mask.any():
            continue
        mean_p, observed = float(p[mask].mean()), float(y[mask].mean())
        ece += mask.sum() / len(p) * abs(mean_p - observed)
        table.append(
            {
                "lo": b / bins,
                "hi": (b + 1) / bins,
                "rows": int(mask.sum()),
                "mean_score": mean_p,
                "observed": observed,
            }
        )
    return float(ece), table


def _sample(values: np.ndarray, rng: np.random.Generator) -> list[float]:
    if len(values) > SAMPLE_SIZE:
        values = rng.choice(values, SAMPLE_SIZE, replace=False)
    return [float(v) for v in np.sort(values)]


def profit_per_customer(y: np.ndarray, targeted: np.ndarray, business: Mapping[str, float]) -> float:
    """Realised profit per customer of targeting ``targeted`` rows (the evaluation's rule)."""
    gain = y * business["offer_success_rate"] * business["customer_value"] - business["offer_cost"]
    return float((gain * targeted).sum() / max(len(y), 1))


def realised_metrics(y: np.ndarray, p: np.ndarray, threshold: float, business: Mapping[str, float]) -> dict:
    """Metrics of scores ``p`` against labels ``y`` at ``threshold`` (both classes must be present)."""
    predicted = p >= threshold
    tp = int((predicted & (y == 1)).sum())
    ece, _ = expected_calibration_error(y, p)
    return {
        "rows": len(y),
        "churn_rate": float(y.mean()),
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "precision": tp / max(int(predicted.sum()), 1),
        "recall": tp / max(int((y == 1).sum()), 1),
        "positive_rate": float(predicted.mean()),
        "expected_calibration_error": ece,
        "mean_score": float(p.mean()),
        "profit_per_customer": profit_per_customer(y, predicted, business),
    }


def build(
    rows: pd.DataFrame,
    scores: np.ndarray,
    threshold: float,
    business: Mapping[str, float],
    source: str = "test split",
    seed: int = 0,
) -> Reference:
    """The reference of ``rows`` (raw schema columns and the label) scored ``scores`` by the
    exported graph."""
    from components.monitoring.cbpe import estimate_from_scores  # layer-internal: one CBPE implementation

    rng = np.random.default_rng(seed)
    scores = np.asarray(scores, dtype=np.float64)
    y = rows[schema.LABEL_COLUMN].to_numpy().astype(np.int64)
    numeric = {}
    for name in schema.NUMERIC:
        values = rows[name].to_numpy(dtype=np.float64)
        finite = values[np.isfinite(values)]
        cuts = numeric_cuts(finite)
        numeric[name] = NumericReference(
            cuts, bin_counts(cuts, finite).tolist(), int(len(values) - len(finite)), _sample(finite, rng)
        )
    categorical = {}
    for name in schema.CATEGORICAL:
        feature = schema.BY_NAME[name]
        counts = np.bincount(
            category_codes(feature, rows[name].to_numpy()), minlength=len(feature.categories) + 1
        )
        categorical[name] = CategoricalReference(
            list(feature.categories), counts[:-1].tolist(), int(counts[-1])
        )
    cuts = numeric_cuts(scores)
    score = ScoreReference(
        cuts=cuts,
        counts=bin_counts(cuts, scores).tolist(),
        histogram=score_histogram(scores).tolist(),
        sample=_sample(scores, rng),
        positive_rate=float((scores >= threshold).mean()),
        mean=float(scores.mean()),
    )
    metrics = realised_metrics(y, scores, threshold, business)
    ece, reliability = expected_calibration_error(y, scores)
    estimate = estimate_from_scores(scores, threshold, seed=seed)
    cbpe = {
        "estimated_roc_auc": estimate.roc_auc.value,
        "interval": [estimate.low, estimate.high],
        "level": estimate.level,
        "realised_roc_auc": metrics["roc_auc"],
        "gap": metrics["roc_auc"] - estimate.roc_auc.value,
        "expected_calibration_error": ece,
        "reliability": reliability,
    }
    return Reference(
        rows=len(rows),
        source=source,
        threshold=float(threshold),
        numeric=numeric,
        categorical=categorical,
        score=score,
        metrics=metrics,
        business={k: float(v) for k, v in business.items()},
        cbpe=cbpe,
    )


def from_dict(data: Mapping, source: str = bundle.REFERENCE_FILE) -> Reference:
    """Validate and load; :class:`ReferenceFormatError` names ``source`` and the bad field."""
    if not isinstance(data, Mapping) or data.get("format") != FORMAT:
        raise ReferenceFormatError(f"{source}: not a {FORMAT} file")
    if data.get("format_version") != FORMAT_VERSION:
        raise ReferenceFormatError(
            f"{source}: format_version {data.get('format_version')!r}, this release reads {FORMAT_VERSION}"
        )
    try:
        numeric = {k: NumericReference(**v) for k, v in data["numeric"].items()}
        categorical = {k: CategoricalReference(**v) for k, v in data["categorical"].items()}
        score = ScoreReference(**data["score"])
        ref = Reference(**{**data, "numeric": numeric, "categorical": categorical, "score": score})
    except (KeyError, TypeError) as exc:
        raise ReferenceFormatError(f"{source}: missing or unexpected field: {exc}") from exc
    for name, num in numeric.items():
        if len(num.counts) != len(num.cuts) + 1:
            raise ReferenceFormatError(
                f"{source}: numeric.{name}: {len(num.counts)} counts for {len(num.cuts)} cuts"
            )
    for name, cat in categorical.items():
        if len(cat.counts) != len(cat.categories):
            raise ReferenceFormatError(f"{source}: categorical.{name}: counts and categories differ")
    missing = set(schema.FEATURE_NAMES) - set(numeric) - set(categorical)
    if missing:
        raise ReferenceFormatError(f"{source}: no reference for feature(s) {sorted(missing)}")
    return ref


def from_json(text: str, source: str = bundle.REFERENCE_FILE) -> Reference:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReferenceFormatError(f"{source}: not valid JSON: {exc}") from exc
    return from_dict(data, source)


def load(bundle_dir: Path) -> Reference:
    """The reference of a local bundle, hash-checked; :class:`components.bundle.NoReferenceError`
    ("no reference in this bundle") for bundles exported before references existed."""
    return from_json(bundle.read_reference(bundle_dir), str(Path(bundle_dir) / bundle.REFERENCE_FILE))
