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
TAG_BUNDLE_URI = "bundle_uri"  # where the version's bundle was published (a KServe storageUri)
TAG_BUNDLE_SHA = "bundle_sha256"  # hash of the published bundle's file manifest
TAG_CONTENT_SHA = "content_sha256"  # sha256 of model.onnx: the model's identity anywhere
TAG_GATE = "gate_verdict"
TAG_GATE_REASONS = "gate_reasons"
TAG_COMPARED = "compared_against"
TAG_PROMOTION = "promotion"
LINEAGE_TAGS: tuple[str, ...] = ("data_hash", "source_uri", "git_commit", "pipeline_run_id", "kfp_run_id")

MODELS_SCHEME = "models:/"


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
