"""The monitor's model lookup: which version served a payload-log window, and its reference.

Without ``--model`` the version is read from the log itself: the rows' ``content_sha256`` and
``registry_version`` columns (written by the server) name it, and the registry finds the
version whose ``content_sha256`` tag matches, under the configured registered model or its
synthetic-lineage twin; its published bundle (``bundle_uri`` tag, hash-checked by the model
store) holds ``reference.json``. With ``--model``: a bundle folder, an ``s3://`` bundle prefix,
or ``models:/NAME@ALIAS`` / ``models:/NAME/VERSION``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from components import reference
from components.bundle import read_metadata
from components.config import Settings
from components.model_store import ModelStore
from components.monitoring.monitor import MonitorConfig, MonitorError, MonitorResult, run_monitor
from components.monitoring.window import served_versions
from components.reference import Reference
from components.registry import RegistryError, connect
from components.registry_names import (
    LINEAGE_SYNTHETIC,
    TAG_BUNDLE_SHA,
    TAG_BUNDLE_URI,
    TAG_CONTENT_SHA,
    TAG_MONITOR_RUN,
    TAG_MONITOR_STATUS,
    is_model_uri,
    parse_model_uri,
    registered_model_for_lineage,
)


def _download_version(settings: Settings, name: str, version: str, work: Path) -> Path:
    with connect(
        replace(settings, registered_model=name), f"{name} v{version} lookup for monitoring"
    ) as registry:
        tags = registry.get_version(version).tags
    if not tags.get(TAG_BUNDLE_URI):
        raise RegistryError(f"{name} v{version} has no {TAG_BUNDLE_URI} tag (not published)")
    store = ModelStore(settings.model_store_uri, settings)
    return store.download(tags[TAG_BUNDLE_URI], work / "bundle", tags.get(TAG_BUNDLE_SHA))


def bundle_for(settings: Settings, model: str, work: Path) -> Path:
    """A local bundle folder for ``model`` (folder, ``s3://`` prefix or ``models:/`` URI)."""
    if is_model_uri(model):
        ref = parse_model_uri(model)
        version = ref.version
        if version is None:
            with connect(replace(settings, registered_model=ref.name), f"{model} lookup") as registry:
                version = registry.alias_version(ref.alias)
            if version is None:
                raise RegistryError(f"{model}: {ref.name!r} has no alias {ref.alias!r}")
        return _download_version(settings, ref.name, version, work)
    if Path(model).is_dir():
        return Path(model)
    return ModelStore(settings.model_store_uri, settings).download(model, work / "bundle")


def _find_by_content(settings: Settings, content_sha256: str) -> tuple[str, str] | None:
    """``(registered model, version)`` whose ``content_sha256`` tag is ``content_sha256``."""
    names = (
        settings.registered_model,
        registered_model_for_lineage(LINEAGE_SYNTHETIC, settings.registered_model),
    )
    for name in names:
        with connect(replace(settings, registered_model=name), "model lookup by content hash") as registry:
            found = registry.client.search_model_versions(
                f"name = '{name}' and tags.`{TAG_CONTENT_SHA}` = '{content_sha256}'"
            )
        if found:
            return name, str(max(int(mv.version) for mv in found))
    return None


def identity(bundle_dir: Path) -> dict:
    """The bundle's identities as the monitor records them."""
    meta = read_metadata(bundle_dir)
    return {
        "content_sha256": meta.content_sha256,
        "registry_version": meta.registry_version,
        "registered_model": meta.registered_model,
        "model_type": meta.model_type,
        "threshold": meta.threshold,
        "bundle": str(bundle_dir),
    }


def resolve_reference(
    settings: Settings,
    log_uri: str,
    work: Path,
    model: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> tuple[Reference, dict]:
    """The reference to compare the window with and the version identity it belongs to."""
    work = Path(work)
    if model is None:
        versions = served_versions(log_uri, settings, since, until)
        if not versions:
            raise MonitorError(
                f"empty window: no payload-log rows in {log_uri} between {since or 'the start'} and "
                f"{until or 'now'}, so no served version to compare with"
            )
        (served, registry_version, content), rows = versions.most_common(1)[0]
        found = _find_by_content(settings, content)
        if found is None:
            raise MonitorError(
                f"the window's main version (model_version {served}, content {content[:12]}, registry "
                f"version {registry_version or 'none'}, {rows:,} rows) is not in the registry at "
                f"{settings.mlflow_tracking_uri} under {settings.registered_model!r}: pass --model "
                "(a bundle folder for a model served from a run folder)"
            )
        bundle_dir = _download_version(settings, found[0], found[1], work)
    else:
        bundle_dir = bundle_for(settings, model, work)
    return reference.load(bundle_dir), identity(bundle_dir)


MONITORING_EXPERIMENT_SUFFIX = "-monitoring"


def mlflow_metrics(result: MonitorResult) -> dict[str, float]:
    """The result's numbers as flat MLflow metric names (``drift.psi.MonthlyCharges``...)."""
    out: dict[str, float] = {"window.rows": float(result.rows)}
    for feature, values in {**result.features, "score": result.prediction}.items():
        for key in ("psi", "kl", "js", "pvalue_adjusted"):
            if key in values:
                out[f"drift.{key}.{feature}"] = float(values[key])
    if "positive_rate" in result.prediction:
        out["prediction.positive_rate"] = float(result.prediction["positive_rate"])
    if result.estimate:
        for bound in ("value", "low", "high"):
            out[f"estimate.roc_auc.{bound}"] = float(result.estimate["roc_auc"][bound])
    if result.live and "metrics" in result.live:
        out.update({f"live.{k}": float(v) for k, v in result.live["metrics"].items()})
    if result.reconciliation:
        out.update(
            {f"reconciliation.gap.{m}": float(v["gap"]) for m, v in result.reconciliation["metrics"].items()}
        )
    return {k: v for k, v in out.items() if v == v}  # MLflow rejects NaN on some stores


def log_to_mlflow(settings: Settings, result: MonitorResult) -> str | None:
    """Record ``result`` in MLflow: a run in ``<experiment>-monitoring`` whose metrics are linked to
    the version's logged model, and the version's ``monitor_status`` / ``monitor_run_id`` tags.
    Returns the run id; None when the monitored bundle is not a registered version."""
    import time

    from mlflow.entities import Metric

    name, version = result.model.get("registered_model"), result.model.get("registry_version")
    if not name or not version:
        return None
    with connect(
        replace(settings, registered_model=name), f"monitor metrics for {name} v{version}"
    ) as registry:
        client = registry.client
        mv = registry.get_version(version)
        experiment_name = settings.experiment + MONITORING_EXPERIMENT_SUFFIX
        experiment = client.get_experiment_by_name(experiment_name)
        experiment_id = experiment.experiment_id if experiment else client.create_experiment(experiment_name)
        run = client.create_run(
            experiment_id,
            run_name=f"monitor {name} v{version} {result.window.get('first')}",
            tags={"registered_model": name, "registry_version": str(version), "status": result.status},
        )
        now = int(time.time() * 1000)
        metrics = [
            Metric(k, v, now, 0, model_id=getattr(mv, "model_id", None) or None)
            for k, v in sorted(mlflow_metrics(result).items())
        ]
        for start in range(0, len(metrics), 1000):  # log_batch takes at most 1000 metrics
            client.log_batch(run.info.run_id, metrics=metrics[start : start + 1000])
        client.set_terminated(run.info.run_id)
        client.set_model_version_tag(name, version, TAG_MONITOR_STATUS, result.status)
        client.set_model_version_tag(name, version, TAG_MONITOR_RUN, run.info.run_id)
    return run.info.run_id


def monitor_payload_log(
    settings: Settings,
    log_uri: str,
    *,
    model: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    labels: str | None = None,
    key_column: str = "request_id",
    config: MonitorConfig | None = None,
    progress: Callable[[str], None] | None = None,
) -> MonitorResult:
    """Find the version that served the window (or ``model``), load its reference, run the monitor.

    The one call behind ``churn monitor run`` and the monitoring pipeline's step; outputs (report,
    MLflow, Pushgateway) are the caller's choice: :func:`~components.monitoring.report.write_report`,
    :func:`log_to_mlflow`, :func:`components.monitoring.metrics.push`.
    """
    with tempfile.TemporaryDirectory(prefix="churn-monitor-model-") as work:
        ref, identity_ = resolve_reference(settings, log_uri, Path(work), model, since, until)
    return run_monitor(
        log_uri,
        ref,
        settings=settings,
        config=config,
        since=since,
        until=until,
        labels=labels,
        key_column=key_column,
        model=identity_,
        progress=progress,
    )
