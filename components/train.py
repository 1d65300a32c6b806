"""Train: one scikit-learn Pipeline (features + encoders + calibrated classifier), tuned by
randomised search with stratified k-fold CV. Same data + seed → same model and metrics.

After the search, the best candidate is refit on the whole train split and wrapped in the
calibration chosen on the validation split (:mod:`components.calibration`).

The search is a plain loop over the sampled candidates (the same candidates, folds, scores and
choice of the best as ``RandomizedSearchCV``), so it can report each candidate as it finishes;
:mod:`components.search` holds it, so the training pipeline can also fan the candidates out over
tasks and refit here from their collected scores (``searched``), with the same result.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import joblib
import numpy as np
import pandas as pd
from scipy.stats import loguniform, randint, uniform
from sklearn.base import clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import Pipeline
from xgboost import XGBClassifier

from components import calibration, schema, search, storage
from components.artifacts import RunArtifacts
from components.config import ConfigError
from components.features import model_frame, preprocessor

log = logging.getLogger(__name__)

MODEL_TYPES = ("xgboost", "logreg", "random_forest")


@dataclass(frozen=True)
class TrainConfig:
    """Which classifier, how much search, how it is scored."""

    model_type: str = "xgboost"
    search_budget: int = 8  # sampled hyperparameter sets
    cv_folds: int = 3
    seed: int = 42
    n_jobs: int = -1  # threads for the classifier itself; the search runs candidates in turn

    def __post_init__(self):
        if self.model_type not in MODEL_TYPES:
            raise ConfigError(f"model_type must be one of {', '.join(MODEL_TYPES)}, got {self.model_type!r}")
        if self.search_budget < 1:
            raise ConfigError(f"search_budget must be >= 1, got {self.search_budget}")
        if self.cv_folds < 2:
            raise ConfigError(f"cv_folds must be >= 2, got {self.cv_folds}")


def _classifier(config: TrainConfig, imbalance: float):
    """The estimator and its search space. ``imbalance`` = negatives / positives.

    Class imbalance is a searched choice (reweighting vs none), so CV decides whether it helps.
    """
    if config.model_type == "xgboost":
        estimator = XGBClassifier(
            tree_method="hist", n_jobs=config.n_jobs, random_state=config.seed, eval_metric="logloss"
        )
        space = {
            "n_estimators": randint(100, 350),
            "learning_rate": loguniform(0.02, 0.15),
            "max_depth": randint(2, 6),
            "min_child_weight": loguniform(1, 20),
            "subsample": uniform(0.7, 0.3),
            "colsample_bytree": uniform(0.6, 0.4),
            "reg_lambda": loguniform(0.5, 20),
            "scale_pos_weight": [1.0, float(np.sqrt(imbalance)), float(imbalance)],
        }
    elif config.model_type == "logreg":
        estimator = LogisticRegression(max_iter=2000, random_state=config.seed)
        space = {"C": loguniform(1e-3, 1e2), "class_weight": [None, "balanced"]}
    else:
        estimator = RandomForestClassifier(n_jobs=config.n_jobs, random_state=config.seed)
        space = {
            "n_estimators": randint(100, 300),
            "max_depth": randint(4, 14),
            "min_samples_leaf": randint(5, 60),
            "max_features": uniform(0.2, 0.6),
            "class_weight": [None, "balanced_subsample"],
        }
    return estimator, {f"classifier__{k}": v for k, v in space.items()}


def build_pipeline(model_type: str, estimator=None) -> Pipeline:
    """Unfitted features + encoders + classifier Pipeline over the raw schema columns."""
    return Pipeline(
        [("features", preprocessor(scale_numeric=model_type == "logreg")), ("classifier", estimator)]
    )


def search_problem(train: pd.DataFrame, config: TrainConfig) -> search.SearchProblem:
    """The search of ``config`` on ``train``: matrix, unfitted Pipeline, sampled candidates, folds."""
    X, y = model_frame(train), train[schema.LABEL_COLUMN].to_numpy()
    positives = int(y.sum())
    if positives == 0 or positives == len(y):
        raise ValueError(f"train split has a single class ({positives} churners of {len(y)} rows)")
    estimator, space = _classifier(config, imbalance=(len(y) - positives) / positives)
    base = build_pipeline(config.model_type, estimator)
    return search.SearchProblem.sample(X, y, base, space, config.search_budget, config.cv_folds, config.seed)


def fit(
    train: pd.DataFrame,
    config: TrainConfig,
    progress: Callable[[str], None] | None = None,
    searched: list[dict] | None = None,
    *,
    valid: pd.DataFrame,
) -> tuple[Pipeline, dict]:
    """Tune and fit on ``train``, calibrate (method chosen on ``valid``); return the calibrated
    pipeline and a search summary.

    ``progress`` (default: the log) gets one line per candidate: done / total, its CV ROC AUC,
    the best so far and the time elapsed. ``searched``: the candidates' scores collected from a
    fanned-out search (:func:`components.search.from_records`); then only the refit runs here.
    """
    say = progress or log.info
    problem = search_problem(train, config)
    X, y, base, cv = problem.X, problem.y, problem.base, problem.cv
    log.info(
        "train: %s, %d candidates x %d folds on %d rows (%.1f%% churn)",
        config.model_type, len(problem.candidates), config.cv_folds, len(y), 100 * y.mean(),
    )  # fmt: skip
    started = time.perf_counter()
    if searched is None:
        results = search.score_candidates(problem, range(len(problem.candidates)), say, started)
    else:
        results = searched
        say(f"train: {len(results)} candidates scored by the fanned-out search; refitting the best")
    # the first of the best, as RandomizedSearchCV ranks ties
    chosen = max(results, key=lambda r: r["roc_auc"].mean())
    best = clone(base).set_params(**chosen["params"])
    model = _calibrated(clone(best).fit(X, y), best, X, y, cv, valid, say)
    summary = {
        "config": asdict(config),
        "best_params": {k.removeprefix("classifier__"): _plain(v) for k, v in chosen["params"].items()},
        "cv_roc_auc": float(chosen["roc_auc"].mean()),
        "cv_roc_auc_std": float(chosen["roc_auc"].std()),
        "cv_log_loss": float(-chosen["neg_log_loss"].mean()),
        "search_seconds": round(time.perf_counter() - started, 2),
        "train_rows": len(y),
        "calibration": calibration.calibration_of(model).to_dict(),
    }
    log.info("train: best cv roc_auc %.4f in %.1fs", summary["cv_roc_auc"], summary["search_seconds"])
    return model, summary


def _calibrated(model: Pipeline, best: Pipeline, X, y, cv, valid: pd.DataFrame, say) -> Pipeline:
    """``model`` (``best`` refit on all of X) with its classifier wrapped in the calibration fitted
    on ``best``'s out-of-fold scores over the search's folds and chosen on ``valid``."""
    say(f"train: calibrating on {cv.get_n_splits()}-fold out-of-fold scores of {len(y)} rows")
    held_out = cross_val_predict(best, X, y, cv=cv, method="predict_proba")[:, 1]
    chosen = calibration.choose(
        held_out, y,
        model.predict_proba(model_frame(valid))[:, 1], valid[schema.LABEL_COLUMN].to_numpy(),
        fitted_on=f"out-of-fold scores of the train split ({cv.get_n_splits()} folds, {len(y)} rows)",
    )  # fmt: skip
    model.steps[-1] = ("classifier", calibration.CalibratedClassifier(model.steps[-1][1], chosen))
    table = chosen.selection["validation"]
    say(
        f"train: calibration {chosen.describe()}; validation log-loss "
        + ", ".join(f"{name} {row['log_loss']:.4f}" for name, row in table.items())
    )
    return model


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def train(
    artifacts: RunArtifacts,
    config: TrainConfig,
    progress: Callable[[str], None] | None = None,
    searched: list[dict] | None = None,
) -> dict:
    """Fit on ``artifacts.train`` (calibration chosen on ``artifacts.valid``); write the joblib'd
    pipeline to ``.model`` and the search summary to ``.search``; return the summary.
    ``progress`` and ``searched`` as for :func:`fit`."""
    model, summary = fit(
        pd.read_parquet(artifacts.train),
        config,
        progress,
        searched,
        valid=pd.read_parquet(artifacts.valid),
    )
    with storage.atomic_path(artifacts.model) as tmp:
        joblib.dump(model, tmp)
    with storage.atomic_path(artifacts.search) as tmp:
        tmp.write_text(json.dumps(summary, indent=2))
    return summary
