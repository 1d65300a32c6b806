"""The promotion quality gate: absolute floors, a calibration bound, and no regression against
the champion.

The champion is never judged by the numbers it was registered with: both models are re-scored
on the *same* rows of the new test split that neither of them trained on (see
:mod:`components.registry.scoring`), and only those paired numbers enter :func:`evaluate_gate`.
A champion that could not be re-scored, or a comparison that was refused (too few such rows, no
record of what the champion trained on, another data lineage), is an input too: the verdict is
built once and never edited afterwards.

The calibration bound: the candidate's expected calibration error on its test split
(:func:`components.calibration.expected_calibration_error`) must not exceed ``max_ece``; its
scores are what serving returns, and expected profit and label-free estimates read them as
probabilities.

Verdicts: ``passed``; ``failed`` (a floor, the calibration bound or the regression bound was
missed, or the champion could not be re-scored); ``refused`` (the floors hold but no fair
comparison was possible).
Neither ``failed`` nor ``refused`` moves an alias.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from components.bundle import POSITIVE_COLUMN
from components.calibration import ECE_BINS, ece_noise, expected_calibration_error
from components.errors import ChurnError
from components.schema import FEATURE_NAMES, ID_COLUMN, LABEL_COLUMN

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
    any gate metric, both scored on the same rows. ``max_ece`` is the largest expected
    calibration error the candidate may show on its test split.
    """

    min_roc_auc: float = 0.70
    min_pr_auc: float = 0.40
    max_regression: float = 0.01
    # Fewer test rows than this that neither model trained on: the comparison is refused.
    min_disjoint_rows: int = 200
    # A calibrated model measures ~0.01-0.02 on a 5,000-row test split (15 bins); an uncalibrated
    # reweighted one ~0.15. Small test splits measure more noise: loosen it for them.
    max_ece: float = 0.05

    def __post_init__(self) -> None:
        for name in ("min_roc_auc", "min_pr_auc", "max_regression", "max_ece"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise GateInputError(f"GateConfig.{name} must be a finite number, got {value!r}")
            if not 0.0 <= float(value) <= 1.0:
                raise GateInputError(f"GateConfig.{name} must be within [0, 1], got {value!r}")
        rows = self.min_disjoint_rows
        # KFP hands ints over as floats (2.0): accept whole numbers, refuse anything else
        if isinstance(rows, bool) or not isinstance(rows, (int, float)) or rows != int(rows) or rows < 1:
            raise GateInputError(f"GateConfig.min_disjoint_rows must be a whole number >= 1, got {rows!r}")
        object.__setattr__(self, "min_disjoint_rows", int(rows))

    @property
    def floors(self) -> dict[str, float]:
        """The absolute floor of each gate metric."""
        return dict(zip(GATE_METRICS, (self.min_roc_auc, self.min_pr_auc), strict=True))

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class GateResult:
    """The verdict: ``passed``, every check made (``checks``) and the failing ones (``reasons``).

    ``candidate`` holds the candidate's scores on its whole test split (the floors);
    ``paired_candidate`` and ``champion`` the two models' scores on the compared rows, and
    ``comparison`` how many rows that was and why the others were left out.
    """

    passed: bool
    reasons: tuple[str, ...]
    checks: tuple[str, ...]
    candidate: dict
    champion: dict | None = None
    champion_version: str | None = None
    config: dict = field(default_factory=dict)
    refused: bool = False
    paired_candidate: dict | None = None
    comparison: dict | None = None

    @property
    def verdict(self) -> str:
        """``passed``, ``refused`` (no fair comparison possible) or ``failed``."""
        if self.passed:
            return "passed"
        return "refused" if self.refused else "failed"

    def to_dict(self) -> dict:
        """JSON-able form (lists, not tuples, so it round-trips through JSON unchanged)."""
        out = asdict(self)
        out.update(reasons=list(self.reasons), checks=list(self.checks), verdict=self.verdict)
        return out


@dataclass(frozen=True)
class LabelledRows:
    """Rows to score: raw feature columns ``X``, 0/1 labels ``y`` and customer ``ids``."""

    X: pd.DataFrame
    y: np.ndarray
    ids: np.ndarray

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, keep: np.ndarray) -> LabelledRows:
        """The rows where the boolean mask ``keep`` is true."""
        return LabelledRows(self.X[keep].reset_index(drop=True), self.y[keep], self.ids[keep])


def labelled_rows(df: pd.DataFrame, what: str) -> LabelledRows:
    """Check a cleaned frame (schema columns, 0/1 label) and split it into :class:`LabelledRows`.

    Raises :class:`GateInputError` naming ``what`` and the missing column or the bad labels.
    """
    missing = [c for c in (ID_COLUMN, *FEATURE_NAMES, LABEL_COLUMN) if c not in df.columns]
    if missing:
        raise GateInputError(f"{what}: missing column(s) {missing}")
    if df.empty:
        raise GateInputError(f"{what}: no rows")
    labels = pd.to_numeric(df[LABEL_COLUMN], errors="coerce")
    bad = ~labels.isin([0, 1])
    if bad.any():
        sample = df.loc[bad, LABEL_COLUMN].head(3).tolist()
        raise GateInputError(f"{what}: column {LABEL_COLUMN!r} must be 0/1, found {sample}")
    y = labels.to_numpy(dtype=int)
    if len(np.unique(y)) < 2:
        raise GateInputError(f"{what}: column {LABEL_COLUMN!r} holds a single class")
    ids = df[ID_COLUMN].astype(str).to_numpy(dtype=object)
    return LabelledRows(df[list(FEATURE_NAMES)].reset_index(drop=True), y, ids)


def load_labelled(path: Path) -> LabelledRows:
    """Read a test split written by ingest (Parquet) into :class:`LabelledRows`."""
    path = Path(path)
    if not path.is_file():
        raise GateInputError(f"test split {path}: no such file")
    return labelled_rows(pd.read_parquet(path), f"test split {path}")


def score(y_true: np.ndarray, proba: np.ndarray) -> dict:
    """Threshold-free scores of positive-class probabilities ``proba`` against ``y_true``: ROC and
    PR AUC, and the expected calibration error (``ece``)."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    proba = np.asarray(proba, dtype=float)
    if proba.ndim == 2:  # (N, 2) class probabilities, as the graph's output
        proba = proba[:, POSITIVE_COLUMN]
    if proba.shape[0] != len(y_true):
        raise GateInputError(f"scores: {proba.shape[0]} probabilities for {len(y_true)} labels")
    return {
        "roc_auc": float(roc_auc_score(y_true, proba)),
        "pr_auc": float(average_precision_score(y_true, proba)),
        "ece": expected_calibration_error(y_true, proba),
        "ece_noise": ece_noise(proba),
        "rows": len(y_true),
    }


def evaluate_gate(
    candidate: Mapping[str, float],
    gate: GateConfig,
    champion: Mapping[str, float] | None = None,
    champion_version: str | None = None,
    *,
    paired_candidate: Mapping[str, float] | None = None,
    comparison: Mapping | None = None,
    champion_unscorable: str | None = None,
    comparison_refused: str | None = None,
) -> GateResult:
    """Apply the floors to ``candidate`` and, if there is a champion, the regression bound.

    ``candidate`` holds the candidate's scores on its test split (:func:`score`), checked
    against the floors. ``champion`` and ``paired_candidate`` (default ``candidate``) are the
    two models scored on the same rows; ``comparison`` describes those rows. Instead of
    champion scores, ``champion_unscorable`` (the champion could not be re-scored: fails) or
    ``comparison_refused`` (no fair comparison possible: refused unless a floor fails) says why
    champion ``champion_version`` was not compared.
    """
    no_comparison = champion_unscorable or comparison_refused
    if no_comparison is not None and (
        champion is not None or champion_version is None or (champion_unscorable and comparison_refused)
    ):
        raise GateInputError(
            "champion_unscorable / comparison_refused: at most one, with champion_version, "
            "and no champion scores"
        )
    checks: list[str] = []
    reasons: list[str] = []
    for metric, floor in gate.floors.items():
        value = float(candidate[metric])
        ok = value >= floor
        line = f"{metric} {value:.4f} {'>=' if ok else '<'} floor {floor:.4f}"
        checks.append(line)
        if not ok:
            reasons.append(line)
    if "ece" not in candidate:
        raise GateInputError("candidate scores: missing 'ece' (expected calibration error; see score())")
    ece = float(candidate["ece"])
    # A small test split shows a calibrated model's ECE above the bound by chance alone: the bound
    # is never tighter than that sampling noise (score()'s ``ece_noise``), said when it applies.
    noise = float(candidate.get("ece_noise", 0.0))
    bound = max(gate.max_ece, noise)
    ok = ece <= bound
    line = (
        f"calibration error (ECE, {ECE_BINS} bins) {ece:.4f} {'<=' if ok else '>'} bound {bound:.4f}"
        + (
            f" (the sampling noise of a calibrated model on {int(candidate.get('rows', 0))} rows, "
            f"95th percentile; configured bound {gate.max_ece:.4f})"
            if noise > gate.max_ece
            else ""
        )
        + ("" if ok else ": its scores are not probabilities; recalibrate before serving")
    )
    checks.append(line)
    if not ok:
        reasons.append(line)
    floors_ok = not reasons
    paired = candidate if paired_candidate is None else paired_candidate
    if champion is not None:
        for metric in GATE_METRICS:
            delta = float(paired[metric]) - float(champion[metric])
            ok = delta >= -gate.max_regression
            line = (
                f"{metric} {float(paired[metric]):.4f} vs champion v{champion_version} "
                f"{float(champion[metric]):.4f} (delta {delta:+.4f}, "
                f"{'within' if ok else 'beyond'} tolerance {gate.max_regression:.4f})"
            )
            checks.append(line)
            if not ok:
                reasons.append(line)
    elif no_comparison is not None:
        checks.append(no_comparison)
        reasons.append(no_comparison)
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
        refused=comparison_refused is not None and floors_ok,
        paired_candidate=dict(paired) if champion is not None else None,
        comparison=dict(comparison) if comparison is not None else None,
    )
