"""A run's artifacts: one typed record of where each step's outputs live.

The same record serves the in-process chain (:func:`components.steps.run_steps`, used by tests
and benchmarks), the KFP component bodies (built from the paths KFP hands them) and the run
folder ``churn run`` leaves behind (:meth:`RunArtifacts.in_dir`, the layout documented in
``docs/pipeline.md``). Standard library only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

# Key of a feature-store training set's lineage (views, versions, as-of range) in the ingest
# profile; the registry records it as the ``feature_lineage`` tag (components.registry_names).
FEATURE_LINEAGE = "feature_lineage"

# File (or folder) name of each artifact in a run folder.
LAYOUT: dict[str, str] = {
    "train": "data/train.parquet",
    "valid": "data/valid.parquet",
    "test": "data/test.parquet",
    "quarantine": "quarantine.csv",
    "profile": "data_profile.json",
    "model": "sklearn/model.joblib",
    "search": "sklearn/search.json",
    "evaluation": "metrics.json",
    "report": "report.html",
    "bundle": "model",
    "registration": "registration.json",
}


@dataclass(frozen=True)
class RunArtifacts:
    """Paths of one run's artifacts; a step reads the fields it needs and writes its own."""

    train: Path  # ingest: training split (Parquet, schema columns + label)
    valid: Path  # ingest: validation split (threshold choice)
    test: Path  # ingest: test split (metrics, parity, gate)
    quarantine: Path  # ingest: rejected rows with a reason each (CSV)
    profile: Path  # ingest: data profile JSON (hash, counts, per-feature statistics)
    model: Path  # train: fitted scikit-learn Pipeline (joblib)
    search: Path  # train: search summary JSON (config, best params, CV scores)
    evaluation: Path  # evaluate: metrics.json
    report: Path  # evaluate: report.html
    bundle: Path  # export: the model bundle folder (components.bundle)
    registration: Path  # register: registration summary JSON

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, Path(getattr(self, f.name)))

    @classmethod
    def in_dir(cls, root: Path) -> RunArtifacts:
        """The standard layout under ``root`` (a run folder)."""
        root = Path(root)
        return cls(**{name: root / rel for name, rel in LAYOUT.items()})


@dataclass(frozen=True)
class Lineage:
    """Where a model version came from: recorded as MLflow tags and in the registration summary."""

    data_hash: str
    source_uri: str
    pipeline_run_id: str
    kfp_run_id: str | None = None
    feature_lineage: str | None = None  # compact JSON, for data built from the feature store


def feature_lineage(profile_path: Path) -> str | None:
    """The feature lineage recorded in an ingest profile, as compact JSON; None for plain tables."""
    value = json.loads(Path(profile_path).read_text()).get(FEATURE_LINEAGE)
    return json.dumps(value, sort_keys=True, separators=(",", ":")) if value else None
