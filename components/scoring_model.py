"""The scoring job's model lookup, shared by ``churn score`` and the ``churn-scoring`` pipeline.

:func:`load_scoring_model` turns what ``churn score --model`` accepts into a
:class:`~components.score.ScoringModel`: a run folder's bundle, a bundle folder or ``s3://``
prefix, or ``models:/NAME@ALIAS`` / ``models:/NAME/VERSION`` (the version's ``bundle_uri`` tag,
downloaded and hash-checked by the model store). Besides the graph, scoring needs the version's
business inputs and, for reason codes, its fitted scikit-learn Pipeline: from the run folder when
the bundle sits in one, else from the version's MLflow run (the ``business.*`` params the register
step logged, and the sklearn model logged with the run), because the bundle's metadata records
neither.

"""

from dataclasses import replace
from pathlib import Path

from components.bundle import BundleMetadata, read_metadata
from components.config import Settings
from components.evaluate import BusinessConfig
from components.model_store import ModelStore
from components.registry import RegistryError, connect
from components.registry_names import (
    MODELS_SCHEME,
    TAG_BUNDLE_SHA,
    TAG_BUNDLE_URI,
    is_model_uri,
    parse_model_uri,
)
from components.score import ScoreError, ScoringModel, run_folder_model, scoring_model

# The register step logs the business inputs flattened under this prefix (steps.registration_params).
_BUSINESS_PARAM = "business."


def _registered_extras(
    settings: Settings, name: str, version: str, work: Path, with_reasons: bool
) -> tuple[BusinessConfig, str, object]:
    """``(business inputs, where they came from, sklearn Pipeline or None)`` of a registered version."""
    with connect(
        replace(settings, registered_model=name), f"{name} v{version} lookup for scoring"
    ) as registry:
        mv = registry.get_version(version)
        params = registry.client.get_run(mv.run_id).data.params
        source = f"MLflow run {mv.run_id} params {_BUSINESS_PARAM}* ({name} v{version})"
        try:
            business = BusinessConfig(
                **{f: float(params[_BUSINESS_PARAM + f]) for f in BusinessConfig.__dataclass_fields__}
            )
        except KeyError as exc:
            raise ScoreError(
                f"{source}: missing {exc.args[0]!r}: the business inputs are not recorded"
            ) from exc
        if not with_reasons:
            return business, source, None
        # The version's source is the logged sklearn model, models:/<model id> (the register step);
        # a SQL store does not return model_id itself.
        model_id = mv.model_id or (mv.source or "").removeprefix(MODELS_SCHEME)
        if not model_id or model_id == mv.source:
            raise ScoreError(
                f"{name} v{version}: no sklearn model logged with its run (needed for reason codes)"
            )
        import mlflow.artifacts
        import mlflow.sklearn

        location = registry.client.get_logged_model(model_id).artifact_location
        local = mlflow.artifacts.download_artifacts(
            artifact_uri=location, dst_path=str(work / "sklearn"), tracking_uri=settings.mlflow_tracking_uri
        )
        return business, source, mlflow.sklearn.load_model(local)


def _version_bundle(settings: Settings, model_uri: str, work: Path) -> Path:
    """Download the bundle a ``models:/`` URI names (its alias must be set) into ``work``."""
    ref = parse_model_uri(model_uri)
    with connect(replace(settings, registered_model=ref.name), f"{model_uri} lookup") as registry:
        version = ref.version or registry.alias_version(ref.alias)
        if version is None:
            raise RegistryError(
                f"{model_uri}: {ref.name!r} has no alias {ref.alias!r} at {registry.endpoint}"
            )
        tags = registry.get_version(version).tags
    if not tags.get(TAG_BUNDLE_URI):
        raise RegistryError(f"{model_uri}: version {version} has no {TAG_BUNDLE_URI} tag (not published)")
    store = ModelStore(settings.model_store_uri, settings)
    return store.download(tags[TAG_BUNDLE_URI], work / "bundle", tags.get(TAG_BUNDLE_SHA))


def load_scoring_model(model_uri: str, settings: Settings, work: Path, *, with_reasons: bool) -> ScoringModel:
    """The model to score with, everything downloaded into ``work``; errors name what is missing."""
    work = Path(work)
    if is_model_uri(model_uri):
        bundle_dir = _version_bundle(settings, model_uri, work)
    elif Path(model_uri).is_dir():
        bundle_dir = Path(model_uri)
        local = run_folder_model(bundle_dir, with_reasons=with_reasons)
        if local is not None:
            return local
    else:
        bundle_dir = ModelStore(settings.model_store_uri, settings).download(model_uri, work / "bundle")
    metadata: BundleMetadata = read_metadata(bundle_dir)
    if metadata.registered_model is None or metadata.registry_version is None:
        raise ScoreError(
            f"bundle {model_uri}: neither in a run folder nor registered, so its business inputs "
            "(metrics.json or the MLflow run) are unknown"
        )
    business, source, sklearn_model = _registered_extras(
        settings, metadata.registered_model, metadata.registry_version, work, with_reasons
    )
    return scoring_model(bundle_dir, business, source, sklearn_model)
