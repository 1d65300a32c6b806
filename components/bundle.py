"""The model bundle contract: what a KServe ``storageUri`` points at, owned here only.

A bundle is a folder with two files, and a third from the release that added monitoring:

- ``model.onnx``: one ONNX graph (preprocessing and model) taking one named ``(N, 1)`` input per
  schema feature and returning ``label`` and ``probabilities`` tensors;
- ``metadata.json``: a :class:`BundleMetadata` record (schema, threshold, metrics, lineage, and
  the calibration map the graph applies: method, parameters, how it was fitted and chosen);
- ``reference.json`` (optional): the drift / label-free-estimation reference of this version,
  its format owned by :mod:`components.reference`; ``metadata.json`` records its sha256
  (``reference_sha256``). Serving never needs it, so a bundle without it (older releases) stays
  servable and its digest is unchanged; the monitor says "no reference in this bundle".

A model has two identities, never mixed: ``content_sha256`` (SHA-256 of ``model.onnx``; the same
bytes anywhere, also before registration) and ``registry_version`` (the MLflow model-version
number, set when the bundle is published to the model store; ``None`` in a run folder).
Export writes bundles, the model store publishes them, serving and batch scoring read them:
all through this module. Standard library only, so every image can import it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path

from components.errors import ChurnError
from components.storage import atomic_path

MODEL_FILE = "model.onnx"
METADATA_FILE = "metadata.json"
REFERENCE_FILE = "reference.json"
BUNDLE_FILES: tuple[str, ...] = (MODEL_FILE, METADATA_FILE)  # what serving needs
OPTIONAL_FILES: tuple[str, ...] = (REFERENCE_FILE,)

# The graph's outputs: probabilities[:, POSITIVE_COLUMN] is P(churn); label is the graph's 0.5 cut.
PROBABILITIES = "probabilities"
LABEL = "label"
POSITIVE_COLUMN = 1

# Keys written by earlier releases, read so bundles already in a model store stay servable.
_LEGACY_KEYS = {"onnx_sha256": "content_sha256"}
# Earlier releases wrote ``model_version``: the registry number in a published bundle, a content
# hash prefix in a run folder. Only the first is an identity this record keeps.
_LEGACY_VERSION = "model_version"


class BundleError(ChurnError, RuntimeError):
    """The bundle is missing, corrupt, or does not match the contract; the message names file and field."""


@dataclass(frozen=True)
class BundleOutputs:
    probabilities: str = PROBABILITIES
    positive_column: int = POSITIVE_COLUMN
    label: str = LABEL


@dataclass(frozen=True)
class BundleMetadata:
    """The typed ``metadata.json`` of a bundle."""

    model_name: str
    model_type: str
    content_sha256: str
    threshold: float
    schema: dict
    inputs: list
    metrics: dict
    parity_max_abs_diff: float
    data_hash: str
    library_versions: dict
    created_at: str
    outputs: BundleOutputs = field(default_factory=BundleOutputs)
    # The calibration inside the graph (components.calibration.Calibration.to_dict: "method",
    # "params", "fitted_on", "chosen_by", "validation"); None in bundles from before calibration.
    calibration: dict | None = None
    registry_version: str | None = None
    registered_model: str | None = None
    mlflow_run_id: str | None = None
    reference_sha256: str | None = None  # sha256 of reference.json; None: no reference in this bundle

    @property
    def files(self) -> tuple[str, ...]:
        """The bundle's files in publishing order (``metadata.json`` last, so a reader seeing it
        can rely on the others being there)."""
        return (MODEL_FILE, *((REFERENCE_FILE,) if self.reference_sha256 else ()), METADATA_FILE)

    @property
    def calibration_method(self) -> str:
        """The graph's calibration method, ``"none"`` for a bundle from before calibration."""
        return self.calibration["method"] if self.calibration else "none"

    @property
    def content_id(self) -> str:
        """Short form of ``content_sha256`` for logs and labels (12 hex digits, like git)."""
        return self.content_sha256[:12]

    def registered(self, version: str | int, registered_model: str, mlflow_run_id: str) -> BundleMetadata:
        """This record as published for registry version ``version``."""
        return replace(
            self,
            registry_version=str(version),
            registered_model=registered_model,
            mlflow_run_id=mlflow_run_id,
        )

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping, source: str = METADATA_FILE) -> BundleMetadata:
        """Validate and load; :class:`BundleError` names ``source`` and the bad field."""
        if not isinstance(data, Mapping):
            raise BundleError(f"{source}: must hold a JSON object, got {type(data).__name__}")
        legacy_version = str(data.get(_LEGACY_VERSION, ""))
        data = {_LEGACY_KEYS.get(k, k): v for k, v in data.items() if k != _LEGACY_VERSION}
        if legacy_version.isdigit():
            data.setdefault("registry_version", legacy_version)
        known = {f.name for f in fields(cls)}
        required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
        missing = [k for k in required if k not in data]
        if missing:
            raise BundleError(f"{source}: missing field(s) {missing}")
        record = {k: v for k, v in data.items() if k in known}
        _expect(source, record, "content_sha256", str, lambda v: len(v) == 64, "a 64-digit hex SHA-256")
        _expect(source, record, "threshold", (int, float), lambda v: 0.0 <= v <= 1.0, "a number in [0, 1]")
        _expect(source, record, "schema", dict, lambda v: isinstance(v.get("features"), list), "a schema")
        for name in ("model_name", "model_type", "data_hash", "created_at"):
            _expect(source, record, name, str, bool, "a non-empty string")
        cal = record.get("calibration")
        if cal is not None and not (isinstance(cal, dict) and isinstance(cal.get("method"), str)):
            raise BundleError(f"{source}: calibration must be an object with a 'method', got {cal!r}")
        version = record.get("registry_version")
        if version is not None and not str(version).isdigit():
            raise BundleError(f"{source}: registry_version must be a version number, got {version!r}")
        outputs = record.get("outputs", {})
        try:
            record["outputs"] = BundleOutputs(**outputs)
        except TypeError as exc:
            raise BundleError(f"{source}: outputs: {exc}") from exc
        record["threshold"] = float(record["threshold"])
        return cls(**record)

    @classmethod
    def from_json(cls, text: str, source: str = METADATA_FILE) -> BundleMetadata:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise BundleError(f"{source}: not valid JSON: {exc}") from exc
        return cls.from_dict(data, source)


def _expect(source: str, record: dict, name: str, kind, ok, what: str) -> None:
    value = record.get(name)
    if isinstance(value, bool) or not isinstance(value, kind) or not ok(value):
        raise BundleError(f"{source}: {name} must be {what}, got {value!r}")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def manifest_sha256(files: Mapping[str, str]) -> str:
    """Hash of a bundle given ``{file name: file sha256}`` (a ``sha256sum``-style manifest, sorted)."""
    manifest = "".join(f"{files[name]}  {name}\n" for name in sorted(files))
    return hashlib.sha256(manifest.encode()).hexdigest()


def present_files(bundle_dir: Path) -> tuple[str, ...]:
    """The bundle files in a local folder: :data:`BUNDLE_FILES` and the optional ones present."""
    return BUNDLE_FILES + tuple(n for n in OPTIONAL_FILES if (Path(bundle_dir) / n).is_file())


def bundle_digest(bundle_dir: Path) -> tuple[str, dict[str, str]]:
    """``(bundle sha256, {name: file sha256})`` of the bundle files in a local folder (a bundle
    without a reference keeps the digest it had before references existed)."""
    files = {name: file_sha256(Path(bundle_dir) / name) for name in present_files(bundle_dir)}
    return manifest_sha256(files), files


def read_metadata(bundle_dir: Path) -> BundleMetadata:
    """Load ``metadata.json`` of a local bundle (no check of ``model.onnx``; see :func:`verify`)."""
    path = Path(bundle_dir) / METADATA_FILE
    try:
        text = path.read_text()
    except OSError as exc:
        raise BundleError(f"bundle {bundle_dir}: cannot read {METADATA_FILE}: {exc}") from exc
    return BundleMetadata.from_json(text, str(path))


def verify(bundle_dir: Path) -> BundleMetadata:
    """Check a local bundle: both files present, metadata valid, ``model.onnx`` matches its hash,
    and ``reference.json``, when present, matches ``reference_sha256`` (serving downloads only
    :data:`BUNDLE_FILES`, so an absent reference is not an error here; :func:`read_reference` says)."""
    bundle_dir = Path(bundle_dir)
    for name in BUNDLE_FILES:
        if not (bundle_dir / name).is_file():
            raise BundleError(f"bundle {bundle_dir}: missing {name}")
    metadata = read_metadata(bundle_dir)
    actual = file_sha256(bundle_dir / MODEL_FILE)
    if actual != metadata.content_sha256:
        raise BundleError(
            f"bundle {bundle_dir}: {MODEL_FILE} has sha256 {actual[:12]}, metadata content_sha256 says "
            f"{metadata.content_sha256[:12]} (corrupt or replaced file)"
        )
    if (bundle_dir / REFERENCE_FILE).is_file():
        _check_reference(bundle_dir, metadata)
    return metadata


def _check_reference(bundle_dir: Path, metadata: BundleMetadata) -> None:
    actual = file_sha256(bundle_dir / REFERENCE_FILE)
    if actual != metadata.reference_sha256:
        raise BundleError(
            f"bundle {bundle_dir}: {REFERENCE_FILE} has sha256 {actual[:12]}, metadata reference_sha256 "
            f"says {(metadata.reference_sha256 or 'none')[:12]} (corrupt, replaced or foreign file)"
        )


class NoReferenceError(BundleError):
    """The bundle has no monitoring reference (exported before references existed)."""


def read_reference(bundle_dir: Path) -> str:
    """The verified text of ``reference.json``; :class:`NoReferenceError` when the bundle has none.

    The format is :mod:`components.reference`'s; this only checks the file against its hash.
    """
    bundle_dir = Path(bundle_dir)
    metadata = verify(bundle_dir)
    if metadata.reference_sha256 is None:
        raise NoReferenceError(
            f"no reference in this bundle ({bundle_dir}, content {metadata.content_id}, registry "
            f"version {metadata.registry_version or 'none'}): it was exported before monitoring "
            "references existed; re-run the pipeline to export one"
        )
    if not (bundle_dir / REFERENCE_FILE).is_file():
        raise BundleError(f"bundle {bundle_dir}: metadata names a reference but {REFERENCE_FILE} is missing")
    _check_reference(bundle_dir, metadata)
    return (bundle_dir / REFERENCE_FILE).read_text()


def write_metadata(bundle_dir: Path, metadata: BundleMetadata) -> Path:
    """Write ``metadata.json`` atomically."""
    path = Path(bundle_dir) / METADATA_FILE
    with atomic_path(path) as tmp:
        tmp.write_text(metadata.to_json())
    return path


def write(
    bundle_dir: Path, onnx_bytes: bytes, metadata: BundleMetadata, reference: str | None = None
) -> BundleMetadata:
    """Write a complete bundle (model, then ``reference`` text if given, metadata last, each
    atomic) and verify it; the metadata written records the reference's sha256."""
    if hashlib.sha256(onnx_bytes).hexdigest() != metadata.content_sha256:
        raise BundleError("content_sha256 does not match the ONNX bytes being written")
    with atomic_path(Path(bundle_dir) / MODEL_FILE) as tmp:
        tmp.write_bytes(onnx_bytes)
    if reference is not None:
        data = reference.encode()
        with atomic_path(Path(bundle_dir) / REFERENCE_FILE) as tmp:
            tmp.write_bytes(data)
        metadata = replace(metadata, reference_sha256=hashlib.sha256(data).hexdigest())
    write_metadata(bundle_dir, metadata)
    return verify(bundle_dir)
