"""The promotion quality gate: absolute floors plus no regression against the champion.

The champion is never judged by the numbers it was registered with: both models are re-scored
on the *same* new test split (see :func:`components.registry.register_model`), and only those
paired numbers enter :func:`evaluate_gate`. A champion that could not be re-scored is an input
too (``champion_unscorable``): the verdict is built once and never edited afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from components.bundle import POSITIVE_COLUMN
from components.errors import ChurnError
from components.schema import FEATURE_NAMES, LABEL_COLUMN

# The metrics the gate reads; both are threshold-free, so they compare models fairly even
# when each model picked its own decision threshold.
GATE_METRICS: tuple[str, ...] = ("roc_auc", "pr_auc")


class GateInputError(ChurnError, ValueError):
    """The gate's configuration or its data is unusable; the message names the field."""


@dataclass(frozen=True)
class GateConfig:
    """Quality gate thresholds.

    ``min_roc_auc`` / ``min_pr_auc`` are absolute floors on the candidate. ``max_regression`` is
    the largest drop (absolute, in AUC points) the candidate may show against the champion on
    any gate metric, both scored on the same rows.
    """

    min_roc_auc: float = 0.70
    min_pr_auc: float = 0.40
    max_regression: float = 0.01

    def __post_init__(self) -> None:
        for name in ("min_roc_auc", "min_pr_auc", "max_regression"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise GateInputError(f"GateConfig.{name} must be a finite number, got {value!r}")
            if not 0.0 <= float(value) <= 1.0:
                raise GateInputError(f"GateConfig.{name} must be within [0, 1], got {value!r}")

    @property
    def floors(self) -> dict[str, float]:
        """The absolute floor of each gate metric."""
        return dict(zip(GATE_METRICS, (self.min_roc_auc, self.min_pr_auc), strict=True))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class GateResult:
    """The verdict: ``passed``, every check made (``checks``) and the failing ones (``reasons``)."""

    passed: bool
    reasons: tuple[str, ...]
    checks: tuple[str, ...]
    candidate: dict
    champion: dict | None = None
    champion_version: str | None = None
    config: dict = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        return "passed" if self.passed else "failed"

    def to_dict(self) -> dict:
        """JSON-able form (lists, not tuples, so it round-trips through JSON unchanged)."""
        out = asdict(self)
        out.update(reasons=list(self.reasons), checks=list(self.checks), verdict=self.verdict)
        return out


def load_labelled(path: Path) -> tuple[pd.DataFrame, np.ndarray]:
    """Read a test split (Parquet or CSV) into raw feature columns and a 0/1 label vector.

    Raises :class:`GateInputError` naming the missing column or the bad label values.
    """
    path = Path(path)
    if not path.is_file():
        raise GateInputError(f"test split {path}: no such file")
    df = pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    missing = [c for c in (*FEATURE_NAMES, LABEL_COLUMN) if c not in df.columns]
    if missing:
        raise GateInputError(f"test split {path}: missing column(s) {missing}")
    if df.empty:
        raise GateInputError(f"test split {path}: no rows")
    labels = pd.to_numeric(df[LABEL_COLUMN], errors="coerce")
    bad = ~labels.isin([0, 1])
    if bad.any():
        sample = df.loc[bad, LABEL_COLUMN].head(3).tolist()
        raise GateInputError(f"test split {path}: column {LABEL_COLUMN!r} must be 0/1, found {sample}")
    y = labels.to_numpy(dtype=int)
    if len(np.unique(y)) < 2:
        raise GateInputError(f"test split {path}: column {LABEL_COLUMN!r} holds a single class")
    return df[list(FEATURE_NAMES)].reset_index(drop=True), y


def score(y_true: np.ndarray, proba: np.ndarray) -> dict:
    """Threshold-free scores of positive-class probabilities ``proba`` against ``y_true``."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    proba = np.asarray(proba, dtype=float)
    if proba.ndim == 2:  # (N, 2) class probabilities, as the graph's output
        proba = proba[:, POSITIVE_COLUMN]
    if proba.shape[0] != len(y_true):
        raise GateInputError(f"scores: {proba.shape[0]} probabilities for {len(y_true)} labels")
    return {
        "roc_auc": float(roc_auc_score(y_true, proba)),
        "pr_auc": float(average_precision_score(y_true, proba)),
        "rows": len(y_true),
    }


def evaluate_gate(
    candidate: Mapping[str, float],
    gate: GateConfig,
    champion: Mapping[str, float] | None = None,
    champion_version: str | None = None,
    *,
    champion_unscorable: str | None = None,
) -> GateResult:
    """Apply the floors to ``candidate`` and, if there is a champion, the regression bound.

    ``candidate`` and ``champion`` must be scored on the same rows (:func:`score`).
    ``champion_unscorable`` says why champion ``champion_version`` could not be re-scored: the
    gate then fails with that reason (floors still checked and reported).
    """
    if champion_unscorable is not None and (champion is not None or champion_version is None):
        raise GateInputError("champion_unscorable needs champion_version and no champion scores")
    checks: list[str] = []
    reasons: list[str] = []
    for metric, floor in gate.floors.items():
        value = float(candidate[metric])
        ok = value >= floor
        line = f"{metric} {value:.4f} {'>=' if ok else '<'} floor {floor:.4f}"
        checks.append(line)
        if not ok:
            reasons.append(line)
    if champion is not None:
        for metric in GATE_METRICS:
            delta = float(candidate[metric]) - float(champion[metric])
            ok = delta >= -gate.max_regression
            line = (
                f"{metric} {float(candidate[metric]):.4f} vs champion v{champion_version} "
                f"{float(champion[metric]):.4f} (delta {delta:+.4f}, "
                f"{'within' if ok else 'beyond'} tolerance {gate.max_regression:.4f})"
            )
            checks.append(line)
            if not ok:
                reasons.append(line)
    elif champion_unscorable is not None:
        checks.append(champion_unscorable)
        reasons.append(champion_unscorable)
    else:
        checks.append("no champion yet: floors only")
    return GateResult(
        passed=not reasons,
        reasons=tuple(reasons),
        checks=tuple(checks),
        candidate=dict(candidate),
        champion=dict(champion) if champion is not None else None,
        champion_version=champion_version,
        config=gate.to_dict(),
    )
