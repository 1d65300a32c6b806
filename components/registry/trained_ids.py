"""The record of which customers a model version trained on: one MLflow run artifact, owned here.

The register step logs the ids of the candidate's train and valid splits
(``schema.ID_COLUMN``) as ``lineage/trained_ids.parquet``; the gate reads a champion's back so
the two models are compared only on test rows neither trained on. The artifact holds one
sorted, unique ``uint64`` column, ``id_blake2b64``: the first 8 bytes of BLAKE2b of each id.

Why hashes, not the ids: 8 bytes per id whatever the id format, and no customer identifiers
copied into the tracking store (often readable by more people than the data lake). A 64-bit
collision would only drop a row from the comparison (never add a leaked one); with a million
training ids the chance per test row is ~5e-14.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from components.registry.client import Registry, RegistryError
from components.schema import ID_COLUMN

TRAINED_IDS_ARTIFACT = "lineage/trained_ids.parquet"
HASH_COLUMN = "id_blake2b64"


def _digests(ids) -> np.ndarray:
    """The 64-bit hash of each of ``ids`` (compared as text), in order."""
    raw = b"".join(hashlib.blake2b(str(i).encode(), digest_size=8).digest() for i in ids)
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64)


def hash_ids(ids) -> np.ndarray:
    """Sorted unique 64-bit hashes of ``ids``: the artifact's content."""
    return np.unique(_digests(ids))


def split_ids(*splits: Path) -> np.ndarray:
    """The hashed ids of the given split files (Parquet, written by ingest)."""
    ids = [pd.read_parquet(path, columns=[ID_COLUMN])[ID_COLUMN] for path in splits]
    return hash_ids(pd.concat(ids, ignore_index=True))


def log_trained_ids(registry: Registry, run_id: str, hashes: np.ndarray, work: Path) -> None:
    """Write ``hashes`` as the run's trained-ids artifact."""
    path = Path(work) / Path(TRAINED_IDS_ARTIFACT).name
    pd.DataFrame({HASH_COLUMN: np.asarray(hashes, dtype=np.uint64)}).to_parquet(path, index=False)
    registry.client.log_artifact(run_id, str(path), str(Path(TRAINED_IDS_ARTIFACT).parent))


def read_trained_ids(registry: Registry, run_id: str, work: Path) -> np.ndarray | None:
    """The hashed ids run ``run_id`` trained on, or None when it has no such record."""
    folder = str(Path(TRAINED_IDS_ARTIFACT).parent)
    if TRAINED_IDS_ARTIFACT not in {a.path for a in registry.client.list_artifacts(run_id, folder)}:
        return None
    Path(work).mkdir(parents=True, exist_ok=True)
    local = registry.client.download_artifacts(run_id, TRAINED_IDS_ARTIFACT, str(work))
    frame = pd.read_parquet(local)
    if list(frame.columns) != [HASH_COLUMN] or frame[HASH_COLUMN].dtype != np.uint64:
        raise RegistryError(
            f"run {run_id} {TRAINED_IDS_ARTIFACT}: expected one uint64 column {HASH_COLUMN!r}, "
            f"found {dict(frame.dtypes.astype(str))}"
        )
    return frame[HASH_COLUMN].to_numpy()


def seen_by(ids: np.ndarray, trained: np.ndarray) -> np.ndarray:
    """Boolean mask: which of ``ids`` (raw ids) are in the hashed set ``trained``."""
    return np.isin(_digests(ids), trained)
