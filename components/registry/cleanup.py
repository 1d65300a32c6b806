"""``churn registry gc``: close what a killed registration left behind.

A registration killed part-way (``kill -9``, a lost node) leaves some of: an MLflow run still
``RUNNING``, a model version tagged ``registration_state=pending``, a bundle in the model
store's staging area or at its version path. The register step tags its run with its holder
(``churn.host``, ``churn.pid``: :mod:`components.registry.holder`) and its staging area
(``churn.staging``); once that holder is provably gone (same host, process not running), or
its run is older than ``older_than_s`` when given, :func:`collect_garbage`:

- **finishes** a pending version whose bundle is fully published at its version path (the
  bundle verifies and its ``metadata.json`` names that version and the version's
  ``content_sha256``): tags ``bundle_uri``/``bundle_sha256``, ``registration_state=complete``;
  no alias is moved (the registration never got that far; ``churn registry promote`` can);
- otherwise **marks it failed** (``registration_state=failed``) and removes whatever was
  published at its version path;
- discards the run's staging area and terminates the run: ``FAILED``, since its registration
  did not finish (a version it completed stays complete, tagged that no alias moved).

Every registration runs it first for its own lineage (holder-gone only), so the next run cleans
up after a killed one; the CLI runs it for every lineage.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

from components.bundle import bundle_digest, verify
from components.config import Settings
from components.model_store import ModelStore
from components.registry.client import Registry, connect
from components.registry.holder import Holder
from components.registry.lineage import lineage_settings
from components.registry.queries import filter_string
from components.registry_names import (
    LINEAGES,
    STATE_COMPLETE,
    STATE_FAILED,
    STATE_PENDING,
    TAG_BUNDLE_SHA,
    TAG_BUNDLE_URI,
    TAG_CONTENT_SHA,
    TAG_PROMOTION,
    TAG_STATE,
)

log = logging.getLogger(__name__)

HOLDER_PREFIX = "churn."  # run tags churn.host / churn.pid: the registering process
TAG_STAGING = "churn.staging"  # run tag: the staging token the registration used
TAG_MODEL = "churn.registered_model"  # run tag: the registered model it registers under
NO_ALIAS_MOVED = "registration killed before alias moves; no alias moved"


def collect_garbage(settings: Settings, *, older_than_s: float | None = None) -> dict:
    """Close abandoned registrations of every lineage (module docstring); return what was done."""
    done: dict = {"versions": [], "runs": [], "left": []}
    for lineage in LINEAGES:
        with connect(lineage_settings(settings, lineage), "gc") as registry:
            _merge(done, close_abandoned(registry, older_than_s=older_than_s))
    return done


def close_abandoned(registry: Registry, *, older_than_s: float | None = None) -> dict:
    """Close the abandoned registrations of ``registry``'s registered model and its experiment."""
    done: dict = {"versions": [], "runs": [], "left": []}
    client, settings = registry.client, registry.settings
    store = ModelStore(settings.model_store_uri, settings)
    for mv in _pending_versions(registry):
        run = client.get_run(mv.run_id) if mv.run_id else None
        why = _abandoned(run, older_than_s)
        if why is None:
            done["left"].append(f"{registry.name} v{mv.version}: its registration may still be running")
            continue
        action = _close_version(registry, store, mv)
        done["versions"].append(
            {"model": registry.name, "version": str(mv.version), "action": action, "why": why}
        )
    experiment = client.get_experiment_by_name(settings.experiment)
    if experiment is None:
        return done
    for run in client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'"):
        tags = run.data.tags
        why = _abandoned(run, older_than_s)
        if why is None or tags.get(TAG_MODEL) != registry.name:
            continue
        if tags.get(TAG_STAGING):
            store.discard_token(tags[TAG_STAGING])
        version = tags.get("registered_version")
        if version:  # complete, but killed before its aliases moved
            client.set_model_version_tag(registry.name, version, TAG_PROMOTION, NO_ALIAS_MOVED)
        client.set_terminated(run.info.run_id, "FAILED")
        done["runs"].append({"run_id": run.info.run_id, "action": "marked FAILED", "why": why})
    return done


def _pending_versions(registry: Registry) -> list:
    from mlflow.exceptions import MlflowException

    name = filter_string(registry.name, "registered model")
    query = f"name = {name} AND tags.`{TAG_STATE}` = '{STATE_PENDING}'"
    try:
        return list(registry.client.search_model_versions(query))
    except MlflowException as exc:
        if getattr(exc, "error_code", None) == "RESOURCE_DOES_NOT_EXIST":
            return []
        raise


def _abandoned(run, older_than_s: float | None) -> str | None:
    """Why ``run``'s registration is known to be dead, or None when it may still be running."""
    if run is None:
        return "no MLflow run recorded"
    if run.info.status != "RUNNING":
        return f"its MLflow run is {run.info.status}"
    holder = Holder.from_tags(run.data.tags, HOLDER_PREFIX)
    if holder is not None and holder.provably_gone():
        return f"its process ({holder}) is gone"
    age = time.time() - run.info.start_time / 1000
    if older_than_s is not None and age > older_than_s:
        return f"started {age:.0f} s ago (> --older-than {older_than_s:.0f} s)"
    return None


def _close_version(registry: Registry, store: ModelStore, mv) -> str:
    """Finish ``mv`` if its bundle is fully published, else mark it failed (module docstring)."""
    client, version = registry.client, str(mv.version)
    uri = store.version_uri(version)
    digest = _published_digest(store, uri, version, mv.tags.get(TAG_CONTENT_SHA))
    if digest is None:
        store.remove_version(version)
        client.set_model_version_tag(registry.name, version, TAG_STATE, STATE_FAILED)
        return "marked failed"
    client.set_model_version_tag(registry.name, version, TAG_BUNDLE_URI, uri)
    client.set_model_version_tag(registry.name, version, TAG_BUNDLE_SHA, digest)
    client.set_model_version_tag(registry.name, version, TAG_STATE, STATE_COMPLETE)
    client.set_model_version_tag(registry.name, version, TAG_PROMOTION, NO_ALIAS_MOVED)
    return "finished (its bundle was published)"


def _published_digest(store: ModelStore, uri: str, version: str, content_sha256: str | None) -> str | None:
    """The bundle hash at ``uri`` if a whole bundle of this version is there, else None."""
    with tempfile.TemporaryDirectory(prefix="churn-gc-") as tmp:
        try:
            local = store.download(uri, Path(tmp) / "bundle")
            meta = verify(local)  # metadata.json readable and model.onnx matching it
        except Exception as exc:  # nothing, or half a bundle, at the version path
            log.info("gc: no complete bundle at %s (%s)", uri, exc)
            return None
        if meta.registry_version != version or meta.content_sha256 != content_sha256:
            return None
        return bundle_digest(local)[0]


def _merge(into: dict, more: dict) -> None:
    for key, items in more.items():
        into[key].extend(items)
