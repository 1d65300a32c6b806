"""Re-scoring bundles on given rows with ONNX Runtime, and the gate against the current champion.

The champion is judged by its published bundle re-scored now on the candidate's test rows, never
by the numbers it was registered with (:mod:`components.gate`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from components.bundle import MODEL_FILE
from components.gate import GateConfig, GateResult, evaluate_gate, score
from components.model_store import ModelStore
from components.registry.client import Registry, RegistryError
from components.registry_names import TAG_BUNDLE_SHA, TAG_BUNDLE_URI

log = logging.getLogger(__name__)


def bundle_scores(bundle_dir: Path, X: pd.DataFrame, y: np.ndarray) -> dict:
    """Gate scores of a local bundle's ONNX graph on ``X, y``, computed exactly as serving scores."""
    from components.export import onnx_predict_proba

    return score(y, onnx_predict_proba(Path(bundle_dir) / MODEL_FILE, X))


def rescore_version(registry: Registry, version: str, X: pd.DataFrame, y: np.ndarray, work: Path) -> dict:
    """Download a registered version's published bundle (hash-checked) into ``work`` and score it."""
    mv = registry.client.get_model_version(registry.name, version)
    uri = mv.tags.get(TAG_BUNDLE_URI)
    if not uri:
        raise RegistryError(f"{registry.name} v{version} has no {TAG_BUNDLE_URI} tag")
    store = ModelStore(registry.settings.model_store_uri, registry.settings)
    return bundle_scores(store.download(uri, Path(work) / f"v{version}", mv.tags.get(TAG_BUNDLE_SHA)), X, y)


def gate_against(
    registry: Registry,
    champion: str | None,
    candidate: dict,
    X: pd.DataFrame,
    y: np.ndarray,
    gate: GateConfig,
    work: Path,
    progress: Callable[[str], None],
) -> GateResult:
    """Gate ``candidate`` (scores on X, y) against version ``champion`` re-scored on X, y.

    A champion that cannot be re-scored (bundle gone or corrupt, another schema) fails the gate
    with that reason rather than the registration: the version is still recorded, and a human
    can look and ``promote --force``. Never falls back to the champion's stored numbers.
    """
    if champion is None:
        return evaluate_gate(candidate, gate)
    progress(f"re-scoring champion v{champion} on the same {len(y)} test rows")
    try:
        scores = rescore_version(registry, champion, X, y, work)
    except Exception as exc:  # whatever broke, the comparison is impossible: that is the verdict
        log.warning("champion v%s could not be re-scored: %s", champion, exc)
        reason = f"champion v{champion} could not be re-scored on this test split ({exc})"
        return evaluate_gate(candidate, gate, champion_version=champion, champion_unscorable=reason)
    return evaluate_gate(candidate, gate, scores, champion)
