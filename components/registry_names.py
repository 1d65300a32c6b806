"""Names shared with the model registry: aliases, model-version tags and ``models:/`` URIs.

The pipeline, the registry package, the CLI, the rollout and the serving image (which reads
MLflow over REST without the mlflow package) all use these; nothing spells a tag or an alias
itself. Standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass

# Aliases (MLflow 3 has no stages): what serves production, and what passed the gate last.
CHAMPION = "champion"
CHALLENGER = "challenger"
ALIASES: tuple[str, ...] = (CHAMPION, CHALLENGER)

# Model-version tags.
TAG_STATE = "registration_state"  # STATE_PENDING until the bundle is published and verified
STATE_PENDING = "pending"
STATE_COMPLETE = "complete"
STATE_FAILED = "failed"  # a registration that died part-way, closed by ``churn registry gc``
TAG_BUNDLE_URI = "bundle_uri"  # where the version's bundle was published (a KServe storageUri)
TAG_BUNDLE_SHA = "bundle_sha256"  # hash of the published bundle's file manifest
TAG_CONTENT_SHA = "content_sha256"  # sha256 of model.onnx: the model's identity anywhere
TAG_GATE = "gate_verdict"
TAG_GATE_REASONS = "gate_reasons"
TAG_COMPARED = "compared_against"
TAG_PROMOTION = "promotion"
# The rollout (components/rollout): what image CD pushed for the version, where its canary is,
# the last verdict on it (JSON), and why it was rejected (a rollback).
TAG_SERVING_IMAGE_TAG = "serving_image_tag"  # the serving image tag (<version>-<git sha>) built with it
TAG_ROLLOUT = "rollout_state"
TAG_ROLLOUT_VERDICT = "rollout_verdict"
TAG_REJECTED = "rollout_rejected"
TAG_MONITOR_STATUS = "monitor_status"  # the last monitor run's verdict (ok, warn, alert, not_enough_data)
TAG_MONITOR_RUN = "monitor_run_id"  # that run's MLflow run id (experiment <experiment>-monitoring)
TAG_CALIBRATION = "calibration"  # the graph's calibration method (bundle metadata), "none" if none
TAG_DATA_LINEAGE = "data_lineage"  # LINEAGE_SYNTHETIC or LINEAGE_REAL: which champion line it is in
TAG_FEATURE_LINEAGE = "feature_lineage"  # JSON: feature views, versions, as-of range (feature store only)
LINEAGE_TAGS: tuple[str, ...] = (
    "data_hash", "source_uri", "git_commit", "pipeline_run_id", "kfp_run_id", TAG_DATA_LINEAGE,
    TAG_FEATURE_LINEAGE,
)  # fmt: skip

# Data lineages: champions are only compared with and replaced by versions of the same lineage.
# Each lineage is its own registered model, so aliases, gate and history never mix them.
SYNTHETIC_SCHEME = "synthetic://"  # the embedded generator's source URIs (``ingest.synthetic_uri``)
LINEAGE_SYNTHETIC = "synthetic"
LINEAGE_REAL = "real"
LINEAGES: tuple[str, ...] = (LINEAGE_REAL, LINEAGE_SYNTHETIC)

MODELS_SCHEME = "models:/"


def data_lineage(source_uri: str) -> str:
    """The lineage of data read from ``source_uri``: the synthetic demo, or the user's own data."""
    return LINEAGE_SYNTHETIC if str(source_uri).startswith(SYNTHETIC_SCHEME) else LINEAGE_REAL


def registered_model_for_lineage(lineage: str, base_name: str) -> str:
    """``base_name`` for real data, ``<base_name>-synthetic`` for the demo: ``lineage``'s registered model."""
    if lineage not in LINEAGES:
        raise ValueError(f"data lineage must be one of {LINEAGES}, got {lineage!r}")
    return base_name if lineage == LINEAGE_REAL else f"{base_name}-{LINEAGE_SYNTHETIC}"


def registered_model_for(source_uri: str, base_name: str) -> str:
    """The registered model a run on ``source_uri`` registers under (the one place this is decided)."""
    return registered_model_for_lineage(data_lineage(source_uri), base_name)


def model_store_for_lineage(store_uri: str, lineage: str) -> str:
    """The model-store root of ``lineage``: version paths of two registered models never collide.

    Real data keeps ``store_uri`` itself; the demo publishes under ``<store_uri>/synthetic``
    (version folders are digits, so the two never meet).
    """
    if lineage not in LINEAGES:
        raise ValueError(f"data lineage must be one of {LINEAGES}, got {lineage!r}")
    root = str(store_uri).rstrip("/")
    return root if lineage == LINEAGE_REAL else f"{root}/{lineage}"


@dataclass(frozen=True)
class ModelRef:
    """A ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION`` reference; exactly one of alias/version."""

    name: str
    alias: str | None = None
    version: str | None = None

    def __post_init__(self) -> None:
        if not self.name or (self.alias is None) == (self.version is None):
            raise ValueError(f"model reference needs a name and exactly one of alias/version: {self!r}")
        if self.version is not None and not self.version.isdigit():
            raise ValueError(f"model version must be a number, got {self.version!r}")

    def __str__(self) -> str:
        tail = f"@{self.alias}" if self.alias is not None else f"/{self.version}"
        return f"{MODELS_SCHEME}{self.name}{tail}"


def is_model_uri(uri: str) -> bool:
    return str(uri).startswith(MODELS_SCHEME)


def parse_model_uri(uri: str) -> ModelRef:
    """Parse ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``; ValueError names the URI."""
    if not is_model_uri(uri):
        raise ValueError(f"not a {MODELS_SCHEME} URI: {uri!r}")
    spec = uri[len(MODELS_SCHEME) :]
    try:
        if "@" in spec:
            name, alias = spec.split("@", 1)
            return ModelRef(name, alias=alias)
        name, _, version = spec.partition("/")
        return ModelRef(name, version=version)
    except ValueError as exc:
        raise ValueError(f"{uri!r}: expected models:/NAME@ALIAS or models:/NAME/VERSION ({exc})") from exc
