"""Re-scoring bundles on given rows with ONNX Runtime, and the gate against the current champion.

The champion is judged by its published bundle re-scored now, never by the numbers it was
registered with (:mod:`components.gate`), and only on the candidate's test rows that neither
model trained on (:mod:`components.registry.trained_ids`). The comparison is refused, rather
than made on rows one model may have memorised, when the champion is of another data lineage,
has no record of its training rows, or too few such rows remain (``GateConfig.min_disjoint_rows``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from components.bundle import MODEL_FILE
from components.gate import GateConfig, GateResult, LabelledRows, evaluate_gate, score
from components.model_store import ModelStore
from components.registry.client import Registry, RegistryError
from components.registry.trained_ids import TRAINED_IDS_ARTIFACT, read_trained_ids, seen_by
from components.registry_names import TAG_BUNDLE_SHA, TAG_BUNDLE_URI, TAG_DATA_LINEAGE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Candidate:
    """The model being registered: its bundle, test rows, training ids and data lineage."""

    bundle: Path
    rows: LabelledRows  # its test split
    trained: np.ndarray  # hashed ids of its train and valid splits (trained_ids.hash_ids)
    lineage: str  # registry_names.data_lineage of its source
    scores: dict  # on all of ``rows``: what the floors judge


def bundle_scores(bundle_dir: Path, rows: LabelledRows) -> dict:
    """Gate scores of a local bundle's ONNX graph on ``rows``, computed exactly as serving scores."""
    from components.export import onnx_predict_proba

    return score(rows.y, onnx_predict_proba(Path(bundle_dir) / MODEL_FILE, rows.X))


def rescore_version(registry: Registry, version: str, rows: LabelledRows, work: Path) -> dict:
    """Download a registered version's published bundle (hash-checked) into ``work`` and score it."""
    mv = registry.client.get_model_version(registry.name, version)
    uri = mv.tags.get(TAG_BUNDLE_URI)
    if not uri:
        raise RegistryError(f"{registry.name} v{version} has no {TAG_BUNDLE_URI} tag")
    store = ModelStore(registry.settings.model_store_uri, registry.settings)
    return bundle_scores(store.download(uri, Path(work) / f"v{version}", mv.tags.get(TAG_BUNDLE_SHA)), rows)


def gate_against(
    registry: Registry,
    champion: str | None,
    candidate: Candidate,
    gate: GateConfig,
    work: Path,
    progress: Callable[[str], None],
) -> GateResult:
    """Gate ``candidate`` against version ``champion`` on the test rows neither trained on.

    A champion that cannot be re-scored (bundle gone or corrupt, another schema) fails the gate
    with that reason rather than the registration: the version is still recorded, and a human
    can look and ``promote --force``. Never falls back to the champion's stored numbers.
    """
    if champion is None:
        return evaluate_gate(candidate.scores, gate)
    mv = registry.client.get_model_version(registry.name, champion)
    refusal = _lineage_refusal(champion, mv.tags.get(TAG_DATA_LINEAGE), candidate.lineage)
    champion_trained = None if refusal else read_trained_ids(registry, mv.run_id, Path(work) / "ids")
    if refusal is None and champion_trained is None:
        refusal = (
            f"champion v{champion} has no record of the rows it trained on ({TRAINED_IDS_ARTIFACT} in "
            f"its MLflow run); not compared on rows it may have trained on"
        )
    if refusal is not None:
        return evaluate_gate(candidate.scores, gate, champion_version=champion, comparison_refused=refusal)
    rows = candidate.rows
    by_candidate = seen_by(rows.ids, candidate.trained)
    by_champion = seen_by(rows.ids, champion_trained)
    unseen = ~(by_candidate | by_champion)
    comparison = {
        "rows": int(unseen.sum()),
        "test_rows": len(rows),
        "excluded": {
            "candidate_trained": int(by_candidate.sum()),
            "champion_trained": int(by_champion.sum()),
        },
        "why": "only test rows neither model trained on are compared",
    }
    compared = rows.subset(unseen)
    if len(compared) < gate.min_disjoint_rows or len(np.unique(compared.y)) < 2:
        refusal = (
            f"only {len(compared)} rows neither model trained on < minimum {gate.min_disjoint_rows} "
            if len(compared) < gate.min_disjoint_rows
            else f"the {len(compared)} rows neither model trained on hold a single class "
        ) + (
            f"(of {len(rows)} test rows, {comparison['excluded']['candidate_trained']} in this model's "
            f"training data, {comparison['excluded']['champion_trained']} in champion v{champion}'s)"
        )
        return evaluate_gate(
            candidate.scores, gate, champion_version=champion, comparison=comparison,
            comparison_refused=refusal,
        )  # fmt: skip
    progress(
        f"re-scoring champion v{champion} on the {len(compared)} of {len(rows)} test rows "
        "neither model trained on"
    )
    paired = bundle_scores(candidate.bundle, compared)
    try:
        scores = rescore_version(registry, champion, compared, work)
    except Exception as exc:  # whatever broke, the comparison is impossible: that is the verdict
        log.warning("champion v%s could not be re-scored: %s", champion, exc)
        reason = f"champion v{champion} could not be re-scored on this test split ({exc})"
        return evaluate_gate(candidate.scores, gate, champion_version=champion, champion_unscorable=reason)
    return evaluate_gate(
        candidate.scores, gate, scores, champion, paired_candidate=paired, comparison=comparison
    )


def _lineage_refusal(champion: str, champion_lineage: str | None, lineage: str) -> str | None:
    if champion_lineage == lineage:
        return None
    if champion_lineage is None:
        return (
            f"champion v{champion} has no {TAG_DATA_LINEAGE} tag (registered before lineages were "
            f"recorded); champions are only compared within one data lineage ('{lineage}')"
        )
    return (
        f"champion v{champion} is of data lineage '{champion_lineage}', this model of '{lineage}'; "
        "champions are only compared within one data lineage"
    )
