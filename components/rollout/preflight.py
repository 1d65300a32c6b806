"""Pre-flight replay: the challenger scores what the champion served, before it sees a request.

A recent window of the production payload log (:mod:`components.payload_log`) is streamed, the
rows the champion answered are fed through the challenger's ONNX graph exactly as the champion
was fed (the log holds the normalised feeds), and the two answers are compared:

- Jensen-Shannon distance (base 2) between the two score distributions (equal-width bins on [0, 1]);
- change in positive rate (each model at its own threshold);
- Spearman rank correlation of the scores;
- overlap of the top-decile "who to call" lists (share of the champion's top 10% the challenger
  also puts in its top 10%).

Beyond a bound the verdict is ``rollback`` (rejected before any live traffic) with the reasons;
a window with fewer than ``min_rows`` champion rows is ``skipped``, never a pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import onnxruntime as ort
from scipy.spatial.distance import jensenshannon
from scipy.stats import spearmanr

from components import bundle as contract
from components.config import Settings
from components.errors import ChurnError
from components.export import session
from components.payload_log import DECISION_COLUMN, SCORE_COLUMN, read_log
from components.registry_names import CHAMPION, TAG_BUNDLE_SHA, TAG_BUNDLE_URI, TAG_CONTENT_SHA
from components.rollout.bounds import number, whole
from components.rollout.verdict import PREFLIGHT, Check, Verdict, judged, skipped

TOP_SHARE = 0.10  # the "who to call" list: the top decile by score


class PreflightError(ChurnError, ValueError):
    """The replay cannot run: a bad bound, or a challenger the logged rows cannot feed."""


@dataclass(frozen=True)
class PreflightConfig:
    """Bounds of the pre-flight replay and the size of its window."""

    min_rows: int = 1000
    max_rows: int = 200_000  # newest rows first; older ones are not read
    max_js_distance: float = 0.1
    max_positive_rate_change: float = 0.05
    min_spearman: float = 0.9
    min_top_decile_overlap: float = 0.7
    bins: int = 20

    def __post_init__(self) -> None:
        for name in ("min_rows", "max_rows", "bins"):
            object.__setattr__(
                self, name, whole(f"PreflightConfig.{name}", getattr(self, name), PreflightError)
            )
        if self.max_rows < self.min_rows:
            raise PreflightError(
                f"PreflightConfig.max_rows ({self.max_rows}) is below min_rows ({self.min_rows})"
            )
        for name in ("max_js_distance", "max_positive_rate_change", "min_spearman", "min_top_decile_overlap"):
            number(f"PreflightConfig.{name}", getattr(self, name), PreflightError, -1.0, 1.0)


@dataclass(frozen=True)
class Challenger:
    """The challenger's graph, opened for scoring, and what the verdict calls it."""

    session: ort.InferenceSession
    probabilities: str
    positive_column: int
    threshold: float
    version: str

    @classmethod
    def open(cls, bundle_dir: Path) -> Challenger:
        """A verified local bundle (:func:`components.bundle.verify`) opened with ONNX Runtime."""
        metadata = contract.verify(Path(bundle_dir))
        return cls(
            session=session(Path(bundle_dir) / contract.MODEL_FILE),
            probabilities=metadata.outputs.probabilities,
            positive_column=metadata.outputs.positive_column,
            threshold=metadata.threshold,
            version=metadata.registry_version or metadata.content_id,
        )

    def inputs(self) -> dict[str, type]:
        """Graph input name -> numpy type of its feed (str for string tensors, float32 else)."""
        return {
            i.name: object if i.type == "tensor(string)" else np.float32 for i in self.session.get_inputs()
        }

    def score(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        (probabilities,) = self.session.run([self.probabilities], feeds)
        return probabilities[:, self.positive_column].astype(np.float64)


def replay(
    payload_uri: str,
    challenger: Challenger,
    champion_sha256: str,
    settings: Settings,
    config: PreflightConfig | None = None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    progress=None,
) -> Verdict:
    """The pre-flight verdict of ``challenger`` on the rows the champion (``champion_sha256``) served.

    Rows of ``[since, until)`` (default: the last 24 hours) are read newest first, at most
    ``config.max_rows``; rows other versions served (a canary running) are left out.
    ``progress(rows)`` is called after each batch.
    """
    config = config or PreflightConfig()
    until = until or datetime.now(timezone.utc)
    since = since or until - timedelta(hours=24)
    inputs = challenger.inputs()
    columns = [*inputs, SCORE_COLUMN, DECISION_COLUMN, "content_sha256", "registry_version"]
    champion_scores, champion_churn, challenger_scores = [], [], []
    champion_version, rows = champion_sha256[:12], 0
    for batch in read_log(payload_uri, settings, since=since, until=until, columns=columns):
        missing = [name for name in inputs if name not in batch.schema.names]
        if missing:
            raise PreflightError(
                f"payload log {payload_uri} has no column {missing[0]!r}, an input of the challenger's "
                "graph: the challenger needs a feature the champion was not fed"
            )
        served = batch.column("content_sha256").to_numpy(zero_copy_only=False) == champion_sha256
        if not served.any():
            continue
        batch = batch.filter(served)
        registry = batch.column("registry_version")[0].as_py()
        champion_version = registry or champion_version
        take = min(batch.num_rows, config.max_rows - rows)
        batch = batch.slice(0, take)
        feeds = {
            name: batch.column(name).to_numpy(zero_copy_only=False).astype(kind).reshape(-1, 1)
            for name, kind in inputs.items()
        }
        try:
            challenger_scores.append(challenger.score(feeds))
        except Exception as exc:  # onnxruntime raises its own Fail types
            raise PreflightError(f"the challenger's graph failed on logged rows: {exc}") from exc
        champion_scores.append(batch.column(SCORE_COLUMN).to_numpy().astype(np.float64))
        champion_churn.append(batch.column(DECISION_COLUMN).to_numpy(zero_copy_only=False).astype(bool))
        rows += take
        if progress is not None:
            progress(rows)
        if rows >= config.max_rows:
            break
    window = f"{since.isoformat(timespec='seconds')}..{until.isoformat(timespec='seconds')}, {rows} rows"
    if rows < config.min_rows:
        return skipped(champion_version, challenger.version, rows, config.min_rows, window)
    checks = compare(
        np.concatenate(champion_scores),
        np.concatenate(champion_churn),
        np.concatenate(challenger_scores),
        challenger.threshold,
        config,
    )
    return judged(PREFLIGHT, champion_version, challenger.version, checks, window)


def replay_version(
    settings: Settings,
    version: str,
    payload_uri: str,
    work: Path,
    config: PreflightConfig | None = None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    progress=None,
) -> Verdict:
    """:func:`replay` of registry version ``version`` against the version the ``champion`` alias names.

    The challenger's published bundle is downloaded into ``work`` and verified against its
    ``bundle_sha256`` tag; the champion is identified in the log by its ``content_sha256`` tag.
    """
    from components.model_store import ModelStore
    from components.registry.client import RegistryError, connect

    with connect(settings, f"pre-flight replay of v{version}") as registry:
        tags = registry.get_version(str(version)).tags
        champion = registry.alias_version(CHAMPION)
        if champion is None:
            raise RegistryError(
                f"{registry.name} has no {CHAMPION!r} alias: nothing served to replay against"
            )
        champion_sha = registry.get_version(champion).tags.get(TAG_CONTENT_SHA)
    if not tags.get(TAG_BUNDLE_URI):
        raise RegistryError(f"version {version} has no {TAG_BUNDLE_URI} tag (not published)")
    if not champion_sha:
        raise RegistryError(f"champion version {champion} has no {TAG_CONTENT_SHA} tag")
    store = ModelStore(settings.model_store_uri, settings)
    bundle_dir = store.download(
        tags[TAG_BUNDLE_URI], Path(work) / f"challenger-{version}", tags.get(TAG_BUNDLE_SHA)
    )
    return replay(
        payload_uri, Challenger.open(bundle_dir), champion_sha, settings, config,
        since=since, until=until, progress=progress,
    )  # fmt: skip


def compare(
    champion: np.ndarray,
    champion_churn: np.ndarray,
    challenger: np.ndarray,
    challenger_threshold: float,
    config: PreflightConfig,
) -> list[Check]:
    """The four checks on paired scores of the same rows."""
    edges = np.linspace(0.0, 1.0, config.bins + 1)
    p = np.histogram(np.clip(champion, 0, 1), edges)[0].astype(np.float64)
    q = np.histogram(np.clip(challenger, 0, 1), edges)[0].astype(np.float64)
    js = float(jensenshannon(p / p.sum(), q / q.sum(), base=2))
    champion_rate = float(champion_churn.mean())
    challenger_rate = float((challenger >= challenger_threshold).mean())
    change = challenger_rate - champion_rate
    rank = spearmanr(champion, challenger).statistic
    rank_detail = "" if math.isfinite(rank) else "a model gives every row the same score"
    rank = float(rank) if math.isfinite(rank) else -1.0
    overlap = top_overlap(champion, challenger, TOP_SHARE)
    return [
        Check(
            "score distribution (JS distance)",
            float(np.median(champion)),
            float(np.median(challenger)),
            js,
            f"<= {config.max_js_distance:g}",
            js <= config.max_js_distance,
            "stable/canary: median score",
        ),
        Check(
            "positive rate",
            champion_rate,
            challenger_rate,
            change,
            f"|change| <= {config.max_positive_rate_change:g}",
            abs(change) <= config.max_positive_rate_change + 1e-12,
        ),
        Check(
            "Spearman rank correlation",
            None,
            None,
            rank,
            f">= {config.min_spearman:g}",
            rank >= config.min_spearman,
            rank_detail,
        ),
        Check(
            "top-decile overlap",
            None,
            None,
            overlap,
            f">= {config.min_top_decile_overlap:g}",
            overlap >= config.min_top_decile_overlap,
            "share of the champion's top 10% also in the challenger's",
        ),
    ]


def top_overlap(champion: np.ndarray, challenger: np.ndarray, share: float) -> float:
    """Share of the champion's top ``share`` rows (by score) that are in the challenger's top ``share``."""
    k = max(1, math.ceil(share * len(champion)))
    top = (np.argsort(-champion, kind="stable")[:k], np.argsort(-challenger, kind="stable")[:k])
    return len(np.intersect1d(*top)) / k
