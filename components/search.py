"""The hyper-parameter search, shared by training in one process and its fan-out over KFP tasks.

:class:`SearchProblem` holds what every candidate is scored on: the training matrix, the unfitted
Pipeline, the candidates sampled from the search space (``ParameterSampler`` with the run's
seed: every process that builds the problem from the same data and config gets the same list)
and the stratified folds. :func:`score_candidates` cross-validates any subset of candidates, so

- ``components.train.fit`` scores all of them in turn, and
- the training pipeline with ``search_shards > 1`` splits the candidate numbers into shards
  (:func:`plan`), scores each shard in its own task (a ``dsl.ParallelFor`` iteration) and
  collects the fold scores (:func:`to_records`, plain JSON; :func:`check_records`,
  :func:`from_records`) for one refit.

Both end in the same list of results in candidate order, and the best is the first of the
highest mean CV ROC AUC either way, so the chosen parameters and the refit model are the same.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.model_selection import ParameterSampler, StratifiedKFold, cross_validate
from sklearn.pipeline import Pipeline

from components.config import ConfigError

SCORING = {"roc_auc": "roc_auc", "neg_log_loss": "neg_log_loss"}


class SearchError(ValueError):
    """Collected search results do not cover the candidates they should (a lost or repeated shard)."""


@dataclass(frozen=True)
class SearchProblem:
    """The data, the unfitted Pipeline, the sampled candidates and the CV folds of one search."""

    X: pd.DataFrame
    y: np.ndarray
    base: Pipeline
    candidates: list[dict]
    cv: StratifiedKFold

    @classmethod
    def sample(
        cls, X: pd.DataFrame, y: np.ndarray, base: Pipeline, space: dict, budget: int, folds: int, seed: int
    ) -> SearchProblem:
        """``budget`` candidates drawn from ``space``, ``folds`` shuffled stratified folds, by ``seed``."""
        candidates = list(ParameterSampler(space, n_iter=budget, random_state=seed))
        return cls(X, y, base, candidates, StratifiedKFold(folds, shuffle=True, random_state=seed))


def score_candidates(
    problem: SearchProblem,
    indices: Iterable[int],
    progress: Callable[[str], None],
    started: float | None = None,
) -> list[dict]:
    """Cross-validate the candidates numbered ``indices``: ``[{"index", "params", "roc_auc",
    "neg_log_loss"}]`` with one score per fold. ``progress`` gets one line per candidate (done /
    total of these indices, its CV ROC AUC, the best so far, seconds since ``started``)."""
    started = time.perf_counter() if started is None else started
    indices = list(indices)
    results: list[dict] = []
    for number, index in enumerate(indices, 1):
        candidate = problem.candidates[index]
        scores = cross_validate(
            clone(problem.base).set_params(**candidate), problem.X, problem.y, cv=problem.cv,
            scoring=SCORING, error_score="raise",
        )  # fmt: skip
        results.append({"index": index, "params": candidate, **{k: scores[f"test_{k}"] for k in SCORING}})
        best = max(r["roc_auc"].mean() for r in results)
        progress(
            f"train: candidate {number}/{len(indices)}  cv roc_auc {scores['test_roc_auc'].mean():.4f}  "
            f"best {best:.4f}  {time.perf_counter() - started:.0f}s elapsed"
        )
    return results


def plan(budget: int, shards: int) -> list[dict]:
    """Candidate numbers ``0 .. budget-1`` in at most ``shards`` contiguous, similar-sized shards:
    ``[{"shard": i, "candidates": [...]}]`` (never an empty shard)."""
    if shards < 1:
        raise ConfigError(f"search_shards must be >= 1, got {shards}")
    return [
        {"shard": i, "candidates": [int(c) for c in chosen]}
        for i, chosen in enumerate(np.array_split(np.arange(budget), min(shards, budget)))
    ]


def to_records(results: Sequence[dict]) -> list[dict]:
    """Results as plain JSON (candidate number and fold scores; the parameters are re-derived
    from the problem, so nothing but numbers crosses the task boundary)."""
    return [{"index": int(r["index"]), **{k: [float(v) for v in r[k]] for k in SCORING}} for r in results]


def check_records(collected: Sequence[Sequence[dict]], budget: int) -> list[dict]:
    """The records of every shard (``dsl.Collected`` of :func:`to_records` lists, any order) as one
    list in candidate order, every candidate ``0 .. budget-1`` exactly once, else :class:`SearchError`.

    Candidate numbers may arrive as floats (kfp turns ints inside collected values into floats).
    """
    by_index: dict[int, dict] = {}
    for shard in collected:
        for record in shard:
            index = int(record["index"])
            if index in by_index:
                raise SearchError(f"candidate {index} was scored by two shards")
            by_index[index] = {**record, "index": index}
    missing = sorted(set(range(budget)) - set(by_index))
    extra = sorted(set(by_index) - set(range(budget)))
    if missing or extra:
        raise SearchError(
            f"collected search scores do not match the {budget} candidates: "
            f"missing {missing}, unexpected {extra}"
        )
    return [by_index[i] for i in range(budget)]


def from_records(problem: SearchProblem, records: Sequence[dict]) -> list[dict]:
    """:func:`score_candidates`' results again from the collected ``records`` (checked by
    :func:`check_records`), with each candidate's parameters from ``problem``."""
    return [
        {"index": r["index"], "params": problem.candidates[r["index"]],
         **{k: np.asarray(r[k], dtype=np.float64) for k in SCORING}}
        for r in check_records([records], len(problem.candidates))
    ]  # fmt: skip
