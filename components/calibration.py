"""Calibration: map the classifier's scores to probabilities that mean what they say.

The searched class reweighting (``scale_pos_weight``, ``class_weight``) inflates churn scores;
the profit threshold hides that, but expected profit, positive rates and label-free performance
estimates need P(churn) itself. The protocol, all deterministic from the seed:

- **fit** each candidate map on held-out scores: out-of-fold predictions of the chosen
  hyperparameters on the train split (the same stratified folds as the search), so every row
  the map learns from was scored by a model that did not train on it, and the model itself
  still trains on the whole train split;
- **choose** between them on the validation split by log-loss (a proper score; Brier and ECE
  are reported beside it), never on test;
- the decision threshold is then chosen on the *calibrated* validation scores (evaluate), and
  every reported number comes from the test split.

Candidate maps, both monotone non-decreasing (ranking is kept, up to isotonic ties):

- ``sigmoid``: logistic regression on the log-odds of the score, ``q = sigmoid(a·logit(p) + b)``
  (Platt scaling on the margin scale: a reweighting by w shifts the log-odds by about log w,
  which this undoes exactly);
- ``isotonic``: scikit-learn's IsotonicRegression on the score, centred: linear between the
  centres of its constant blocks (see :func:`fit_isotonic`), the end values outside them.

:class:`CalibratedClassifier` wraps the fitted classifier and the chosen :class:`Calibration` as
the Pipeline's ``classifier`` step, so ``predict_proba`` is calibrated and the ONNX export
(:mod:`components.onnx_converters`) appends the same map to the graph.

Expected calibration error (:func:`expected_calibration_error`): :data:`ECE_BINS` equal-width
bins over [0, 1] (the last one closed), ECE = Σ_b (n_b / N)·|mean label_b - mean score_b|, empty
bins skipped (Guo et al., 2017).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss

METHODS: tuple[str, ...] = ("sigmoid", "isotonic")
ECE_BINS = 15
# Scores are clipped to [EPS, 1 - EPS] before the log-odds: finite, and representable in float32
# (the ONNX graph's precision) with room to spare.
EPS = 1e-6
# Proper score the method is chosen by, on the validation split.
CHOICE_METRIC = "log_loss"


def expected_calibration_error(y: np.ndarray, p: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """ECE of scores ``p`` against 0/1 labels ``y`` on ``n_bins`` equal-width bins (module doc)."""
    y, p = np.asarray(y, dtype=float), np.asarray(p, dtype=float)
    if len(y) == 0 or len(y) != len(p):
        raise ValueError(f"ECE needs as many scores as labels, got {len(p)} and {len(y)}")
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)  # p == 1 goes into the last bin
    counts = np.bincount(bins, minlength=n_bins)
    gap = np.abs(np.bincount(bins, y, n_bins) - np.bincount(bins, p, n_bins))  # n_b · |ȳ_b - p̄_b|
    return float(gap[counts > 0].sum() / len(y))


def ece_noise(
    p: np.ndarray, n_bins: int = ECE_BINS, draws: int = 200, quantile: float = 0.95, seed: int = 0
) -> float:
    """The ECE a perfectly calibrated model with scores ``p`` shows by chance on this many rows.

    Labels are drawn ``draws`` times from Bernoulli(``p``) (seeded: the same scores give the same
    answer) and the ``quantile`` of their ECE is returned. An ECE below it cannot be told from
    sampling noise: on a 300-row test split it is ~0.09, on 10,000 rows ~0.015 (measured).
    """
    p = np.asarray(p, dtype=float)
    rng = np.random.default_rng(seed)
    eces = [expected_calibration_error(rng.uniform(size=p.size) < p, p, n_bins) for _ in range(draws)]
    return float(np.quantile(eces, quantile))


def logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1.0 - EPS)
    return np.log(p) - np.log1p(-p)


@dataclass(frozen=True)
class Calibration:
    """A fitted monotone map from the classifier's P(churn) to a calibrated one.

    ``params``: sigmoid ``{"slope": a, "intercept": b}``; isotonic ``{"x": knots, "y": values}``
    (increasing ``x``, non-decreasing ``y``, at least two knots).
    """

    method: str
    params: dict = field(default_factory=dict)
    # How it was fitted and chosen: see :func:`choose` (empty for a hand-built map).
    selection: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"calibration method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.method == "isotonic":
            x, y = np.asarray(self.params["x"]), np.asarray(self.params["y"])
            if len(x) < 2 or len(x) != len(y) or np.any(np.diff(x) <= 0) or np.any(np.diff(y) < 0):
                raise ValueError("isotonic calibration needs >= 2 increasing knots, non-decreasing values")

    def apply(self, p: np.ndarray) -> np.ndarray:
        """Calibrated P(churn) for raw scores ``p`` (float64)."""
        if self.method == "sigmoid":
            z = self.params["slope"] * logit(p) + self.params["intercept"]
            return 1.0 / (1.0 + np.exp(-z))
        return np.interp(np.asarray(p, dtype=np.float64), self.params["x"], self.params["y"])

    def describe(self) -> str:
        """One line for logs and registry tags."""
        if self.method == "sigmoid":
            return f"sigmoid(slope={self.params['slope']:.4f}, intercept={self.params['intercept']:.4f})"
        return f"isotonic({len(self.params['x'])} knots)"

    def to_dict(self) -> dict:
        return {"method": self.method, "params": self.params, **self.selection}


def fit_sigmoid(p: np.ndarray, y: np.ndarray) -> Calibration:
    """Unpenalised logistic regression of ``y`` on logit(``p``)."""
    lr = LogisticRegression(C=np.inf, max_iter=1000).fit(logit(p).reshape(-1, 1), y)
    return Calibration("sigmoid", {"slope": float(lr.coef_[0, 0]), "intercept": float(lr.intercept_[0])})


def fit_isotonic(p: np.ndarray, y: np.ndarray) -> Calibration:
    """Centred isotonic regression: scikit-learn's IsotonicRegression of ``y`` on ``p``, kept as
    the centre (mean score) and value of each of its constant blocks, interpolated between them.

    Between centres the map rises strictly, so it keeps the ranking (ties only in the two end
    blocks) and has no near-vertical step that would amplify the ~1e-7 float32 differences
    between scikit-learn's and the ONNX graph's scores beyond the export's parity tolerance.
    """
    p, y = np.asarray(p, dtype=np.float64), np.asarray(y, dtype=np.float64)
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    fitted = iso.fit(p, y).predict(p)
    # fitted is non-decreasing in p, so each distinct value is one contiguous block of scores
    values, block = np.unique(fitted, return_inverse=True)
    centres = np.bincount(block, weights=p) / np.bincount(block)
    if len(values) < 2:  # a single block (no signal): a constant map
        centres, values = np.array([0.0, 1.0]), np.repeat(values, 2)
    return Calibration("isotonic", {"x": centres.tolist(), "y": values.tolist()})


FITTERS: dict[str, Callable[[np.ndarray, np.ndarray], Calibration]] = {
    "sigmoid": fit_sigmoid,
    "isotonic": fit_isotonic,
}


def scores(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Log-loss, Brier score and ECE of scores ``p``."""
    clipped = np.clip(p, EPS, 1.0 - EPS)  # an isotonic 0 or 1 must not make log-loss infinite
    return {
        "log_loss": float(log_loss(y, clipped, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "ece": expected_calibration_error(y, p),
    }


def choose(
    p_fit: np.ndarray, y_fit: np.ndarray, p_valid: np.ndarray, y_valid: np.ndarray, fitted_on: str
) -> Calibration:
    """Fit every method on ``(p_fit, y_fit)``; return the one with the lowest validation log-loss.

    Its ``selection`` records ``fitted_on`` (what the fit rows were), the rule, and each
    candidate's (and the uncalibrated scores') validation log-loss, Brier and ECE.
    """
    fitted = {method: fitter(p_fit, y_fit) for method, fitter in FITTERS.items()}
    table = {method: scores(y_valid, cal.apply(p_valid)) for method, cal in fitted.items()}
    chosen = min(METHODS, key=lambda method: (table[method][CHOICE_METRIC], METHODS.index(method)))
    selection = {
        "fitted_on": fitted_on,
        "chosen_by": f"lowest validation {CHOICE_METRIC}",
        "validation": {"uncalibrated": scores(y_valid, p_valid), **table},
        "ece_bins": ECE_BINS,
    }
    return replace(fitted[chosen], selection=selection)


class CalibratedClassifier(ClassifierMixin, BaseEstimator):
    """A fitted binary classifier followed by a fitted :class:`Calibration` (both prefit).

    ``predict_proba`` is calibrated; :meth:`uncalibrated_proba` gives the classifier's own
    scores; ``predict`` is the calibrated 0.5 cut, as the ONNX graph's ``label``.
    """

    def __init__(self, estimator=None, calibration: Calibration | None = None):
        self.estimator = estimator
        self.calibration = calibration

    @property
    def classes_(self) -> np.ndarray:
        return self.estimator.classes_

    def __sklearn_is_fitted__(self) -> bool:
        return self.calibration is not None

    def fit(self, X, y):
        """Both parts come fitted (see :func:`choose`); fitting again is a mistake, not a no-op."""
        raise TypeError("CalibratedClassifier wraps a prefit classifier and calibration; build it fitted")

    def uncalibrated_proba(self, X) -> np.ndarray:
        return self.estimator.predict_proba(X)

    def predict_proba(self, X) -> np.ndarray:
        q = self.calibration.apply(self.estimator.predict_proba(X)[:, 1])
        return np.column_stack([1.0 - q, q])

    def predict(self, X) -> np.ndarray:
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]


def base_classifier(step):
    """The classifier a Pipeline's ``classifier`` step scores with, calibration unwrapped."""
    return step.estimator if isinstance(step, CalibratedClassifier) else step


def calibration_of(pipeline) -> Calibration | None:
    """The :class:`Calibration` of a fitted churn Pipeline (``None`` for an uncalibrated one)."""
    step = pipeline.steps[-1][1]
    return step.calibration if isinstance(step, CalibratedClassifier) else None


def uncalibrated_proba(pipeline, X) -> np.ndarray:
    """P(churn) of a fitted churn Pipeline before calibration (the classifier's own scores)."""
    step = pipeline.steps[-1][1]
    if not isinstance(step, CalibratedClassifier):
        return pipeline.predict_proba(X)[:, 1]
    return step.uncalibrated_proba(pipeline[:-1].transform(X))[:, 1]
