"""``churn deploy render``: an environment's final manifests for one registry version.

The overlay ``manifests/overlays/<env>`` is built with kustomize (``kubectl kustomize``, as
``make manifests`` does), then the InferenceService gets what the registry knows about the
version, never what someone typed into ``release.env``:

- ``storageUri``: the version's published bundle (model-version tag ``bundle_uri``, written by the
  register step only after the model store verified the bundle); it must lie in the model store
  the environment's ``churn-platform`` ConfigMap names, which the model reader role can read;
- ``runtimeVersion`` (and the ServingRuntime image's tag): the serving image tag CD pushed with
  the image that registered the version (tag ``serving_image_tag``, ``<version>-<git sha>``);
- ``canaryTrafficPercent``: ``--canary PERCENT`` (1-99), or absent (all traffic to the version).

:func:`release_env` gives the same two values as the overlay's ``release.env`` lines.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from components.config import Settings
from components.errors import ChurnError
from components.registry.client import connect
from components.registry_names import STATE_COMPLETE, TAG_BUNDLE_URI, TAG_SERVING_IMAGE_TAG, TAG_STATE

ENVIRONMENTS = ("dev", "staging", "prod")
RUNTIME_CONTAINER = "kserve-container"


class RenderError(ChurnError, ValueError):
    """The manifests cannot be rendered for that version; the message names what is missing."""


@dataclass(frozen=True)
class Release:
    """What the registry says version ``version`` is served from."""

    registered_model: str
    version: str
    storage_uri: str
    image_tag: str


def release_of(settings: Settings, version: str) -> Release:
    """The published bundle and pushed image tag of ``version``; :class:`RenderError` if either is missing."""
    with connect(settings, f"look up v{version}") as registry:
        tags = registry.get_version(str(version)).tags
        name = registry.name
    if tags.get(TAG_STATE) != STATE_COMPLETE or not tags.get(TAG_BUNDLE_URI):
        raise RenderError(f"{name} v{version}: registration incomplete, no published bundle to serve")
    if not tags.get(TAG_SERVING_IMAGE_TAG):
        raise RenderError(
            f"{name} v{version}: no {TAG_SERVING_IMAGE_TAG} tag: no serving image is known to have been "
            "pushed with it (the pipeline's deploy step records the tag of the CD-built image it ran in)"
        )
    return Release(name, str(version), tags[TAG_BUNDLE_URI], tags[TAG_SERVING_IMAGE_TAG])


def build_overlay(manifests: Path, env: str) -> list[dict]:
    """``kubectl kustomize manifests/overlays/<env>`` as a list of objects."""
    import yaml

    if env not in ENVIRONMENTS:
        raise RenderError(f"--env: expected one of {', '.join(ENVIRONMENTS)}, got {env!r}")
    overlay = Path(manifests) / "overlays" / env
    if not (overlay / "kustomization.yaml").is_file():
        raise RenderError(f"--manifests {manifests}: no overlay {overlay}/kustomization.yaml")
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise RenderError("kubectl not found on PATH (it builds the kustomize overlay)")
    result = subprocess.run(
        [kubectl, "kustomize", str(overlay)], capture_output=True, text=True, timeout=120, check=False
    )
    if result.returncode != 0:
        raise RenderError(f"kubectl kustomize {overlay} failed: {result.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def render(docs: list[dict], release: Release, canary: int | None = None) -> list[dict]:
    """``docs`` (an overlay) with the InferenceService and its runtime set to ``release``."""
    if canary is not None and not 1 <= canary <= 99:
        raise RenderError(f"--canary: a share of traffic between 1 and 99 percent, got {canary}")
    isvcs = [d for d in docs if d.get("kind") == "InferenceService"]
    if len(isvcs) != 1:
        raise RenderError(f"the overlay holds {len(isvcs)} InferenceServices, expected exactly one")
    (isvc,) = isvcs
    store = next(
        (d["data"].get("CHURN_MODEL_STORE_URI") for d in docs
         if d.get("kind") == "ConfigMap" and d["metadata"]["name"] == "churn-platform"),
        None,
    )  # fmt: skip
    if store and not release.storage_uri.startswith(store.rstrip("/") + "/"):
        raise RenderError(
            f"{release.registered_model} v{release.version}: bundle {release.storage_uri} is not in this "
            f"environment's model store {store} (registered against another store?)"
        )
    predictor = isvc["spec"]["predictor"]
    predictor["model"]["storageUri"] = release.storage_uri
    predictor["model"]["runtimeVersion"] = release.image_tag
    predictor.pop("canaryTrafficPercent", None)
    if canary is not None:
        predictor["canaryTrafficPercent"] = canary
    runtime_name = predictor["model"].get("runtime")
    for doc in docs:
        if doc.get("kind") == "ServingRuntime" and doc["metadata"]["name"] == runtime_name:
            for container in doc["spec"]["containers"]:
                if container["name"] == RUNTIME_CONTAINER:
                    repository = container["image"].rsplit(":", 1)[0]
                    container["image"] = f"{repository}:{release.image_tag}"
    return docs


def to_yaml(docs: list[dict]) -> str:
    import yaml

    return yaml.safe_dump_all(docs, sort_keys=False)


def release_env(env: str, release: Release, mlflow_image_tag: str) -> str:
    """The overlay's ``release.env`` for ``release`` (what the applied overlay then serves)."""
    return (
        f"# Written by `make release-env ENV={env} MODEL_VERSION=N` (`churn deploy release-env`): the\n"
        "# model version served, its serving image tag as the registry records it (pushed by CD with\n"
        "# the image that registered it) and the MLflow image tag (platform/versions.yaml).\n"
        f"MODEL_VERSION={release.version}\n"
        f"SERVING_IMAGE_TAG={release.image_tag}\n"
        f"MLFLOW_IMAGE_TAG={mlflow_image_tag}\n"
    )
