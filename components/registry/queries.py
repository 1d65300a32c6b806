"""Read-only registry queries behind ``churn registry list/show/compare/history`` (and ``churn serve``).

MLflow's search filter grammar has no escapes: a string value is whatever lies between its
quotes. So user input goes into a filter only through :func:`filter_string`, which picks the
quote the value does not contain and refuses what no quoting can carry.
"""

from __future__ import annotations

import json
import operator
import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from components.config import Settings
from components.gate import LabelledRows, labelled_rows
from components.registry.audit import history
from components.registry.client import Registry, RegistryError, connect, is_missing
from components.registry.scoring import rescore_version
from components.registry.tracking import KEY_METRICS
from components.registry.trained_ids import read_trained_ids, seen_by
from components.registry_names import (
    LINEAGE_TAGS,
    TAG_BUNDLE_SHA,
    TAG_BUNDLE_URI,
    TAG_COMPARED,
    TAG_CONTENT_SHA,
    TAG_GATE,
    TAG_GATE_REASONS,
    TAG_PROMOTION,
    TAG_STATE,
)

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt,
    "==": operator.eq, "=": operator.eq,
}  # fmt: skip
_METRIC_FILTER = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(>=|<=|==|>|<|=)\s*([-+0-9.eE]+)\s*$")


def filter_string(value: str, what: str) -> str:
    """``value`` as a quoted MLflow filter string; :class:`RegistryError` names ``what`` if it cannot be."""
    for quote in ("'", '"'):
        if quote not in value:
            return f"{quote}{value}{quote}"
    raise RegistryError(f"{what} {value!r}: MLflow filters cannot hold both ' and \" in one value")


def _tag_clause(key: str, value: str) -> str:
    if "`" in key or not key:
        raise RegistryError(f"--tag {key!r}: a tag name cannot be empty or contain a backtick")
    return f"tags.`{key}` = {filter_string(value, f'--tag {key}=')}"


def parse_metric_filter(text: str) -> tuple[str, Callable[[float, float], bool], float]:
    """``"roc_auc>=0.8"`` -> ``(metric, op, value)``; errors name the filter."""
    match = _METRIC_FILTER.match(text)
    if not match:
        raise RegistryError(f"--metric {text!r}: expected NAME OP NUMBER, e.g. 'roc_auc>=0.8'")
    name, op, value = match.groups()
    return name, _OPS[op], float(value)


def _aliases_by_version(registry: Registry) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for alias, version in registry.client.get_registered_model(registry.name).aliases.items():
        out.setdefault(str(version), []).append(alias)
    return {v: sorted(a) for v, a in out.items()}


def _row(mv, aliases: dict[str, list[str]]) -> dict:
    tags = mv.tags
    return {
        "version": str(mv.version),
        "created": mv.creation_timestamp,
        "aliases": aliases.get(str(mv.version), []),
        "gate": tags.get(TAG_GATE, "?"),
        "state": tags.get(TAG_STATE, "?"),
        **{m: float(tags[m]) for m in KEY_METRICS if m in tags},
        "data_hash": tags.get("data_hash"),
        "run_id": mv.run_id,
        "bundle_uri": tags.get(TAG_BUNDLE_URI),
    }


def list_versions(
    settings: Settings,
    *,
    alias: str | None = None,
    tags: Mapping[str, str] | None = None,
    metric_filters: list[str] | None = None,
    limit: int = 50,
) -> list[dict]:
    """Versions, newest first, optionally filtered by alias, tag equality and metric bounds."""
    from mlflow.exceptions import MlflowException

    filters = [parse_metric_filter(f) for f in metric_filters or []]
    clauses = [f"name = {filter_string(settings.registered_model, 'CHURN_REGISTERED_MODEL')}"]
    clauses += [_tag_clause(k, v) for k, v in (tags or {}).items()]
    with connect(settings, "list versions") as registry:
        try:
            found = registry.client.search_model_versions(" AND ".join(clauses))
        except MlflowException as exc:
            if is_missing(exc):
                return []
            raise
        aliases = _aliases_by_version(registry) if found else {}
    rows = []
    for mv in sorted(found, key=lambda m: int(m.version), reverse=True):
        row = _row(mv, aliases)
        if alias and alias not in row["aliases"]:
            continue
        if any(metric not in row or not op(row[metric], value) for metric, op, value in filters):
            continue
        rows.append(row)
    return rows[:limit]


def show_version(settings: Settings, version: str) -> dict:
    """Full lineage of one version: data, code, pipeline run, metrics, artifacts, alias history."""
    with connect(settings, f"show v{version}") as registry:
        mv = registry.get_version(version)
        run = registry.client.get_run(mv.run_id) if mv.run_id else None
        artifacts = _artifact_paths(registry, mv.run_id) if mv.run_id else []
        events = [e.to_dict() for e in history(registry) if str(version) in (e.from_version, e.to_version)]
        aliases = _aliases_by_version(registry).get(str(version), [])
    tags = mv.tags
    return {
        "registered_model": settings.registered_model,
        "version": str(mv.version),
        "aliases": aliases,
        "state": tags.get(TAG_STATE),
        "gate": {"verdict": tags.get(TAG_GATE), "reasons": json.loads(tags.get(TAG_GATE_REASONS, "[]"))},
        "compared_against": tags.get(TAG_COMPARED),
        "promotion": tags.get(TAG_PROMOTION),
        "lineage": {k: tags.get(k) for k in LINEAGE_TAGS if tags.get(k)},
        "bundle": {
            "uri": tags.get(TAG_BUNDLE_URI),
            "sha256": tags.get(TAG_BUNDLE_SHA),
            "content_sha256": tags.get(TAG_CONTENT_SHA),
        },
        "source": mv.source,
        "run_id": mv.run_id,
        "metrics": dict(run.data.metrics) if run else {},
        "params": dict(run.data.params) if run else {},
        "artifacts": artifacts,
        "promotion_history": events,
    }


def _artifact_paths(registry: Registry, run_id: str) -> list[str]:
    out, todo = [], [None]
    while todo:
        for info in registry.client.list_artifacts(run_id, todo.pop()):
            (todo.append(info.path) if info.is_dir else out.append(info.path))
    return sorted(out)


def compare_versions(settings: Settings, a: str, b: str, data_uri: str | None = None) -> dict:
    """Two versions side by side; with ``data_uri`` both are re-scored on the same labelled rows."""
    left, right = show_version(settings, a), show_version(settings, b)
    keys = sorted(set(left["metrics"]) | set(right["metrics"]))
    out = {
        "a": left["version"],
        "b": right["version"],
        "metrics": {k: [left["metrics"].get(k), right["metrics"].get(k)] for k in keys},
        "lineage": {k: [left["lineage"].get(k), right["lineage"].get(k)] for k in LINEAGE_TAGS},
        "aliases": [left["aliases"], right["aliases"]],
        "gate": [left["gate"]["verdict"], right["gate"]["verdict"]],
    }
    if data_uri:
        rows, cleaning = _labelled_source(data_uri, settings)
        with (
            tempfile.TemporaryDirectory(prefix="churn-compare-") as tmp,
            connect(settings, "re-score") as registry,
        ):
            out["rescored"] = {
                "data": data_uri,
                "rows": len(rows),
                **cleaning,
                "a": rescore_version(registry, a, rows, Path(tmp)),
                "b": rescore_version(registry, b, rows, Path(tmp)),
                "seen_in_training": [_seen_in_training(registry, v, rows, Path(tmp)) for v in (a, b)],
            }
    return out


def _labelled_source(data_uri: str, settings: Settings) -> tuple[LabelledRows, dict]:
    """Labelled rows from ``data_uri`` in the project's input format, cleaned exactly as ingest does."""
    from components.ingest import clean, read_source

    cleaned = clean(read_source(data_uri, settings))
    rows = labelled_rows(cleaned.data, f"--data {data_uri}")
    return rows, {"source_rows": cleaned.n_source, "quarantined": len(cleaned.quarantine)}


def _seen_in_training(registry: Registry, version: str, rows: LabelledRows, work: Path) -> int | None:
    """How many of ``rows`` version ``version`` trained on (None: no record of its training rows)."""
    run_id = registry.get_version(version).run_id
    trained = read_trained_ids(registry, run_id, work / f"ids-v{version}") if run_id else None
    return None if trained is None else int(seen_by(rows.ids, trained).sum())


def audit_history(settings: Settings) -> list[dict]:
    """The audit trail of alias moves, oldest first."""
    with connect(settings, "history") as registry:
        return [e.to_dict() for e in history(registry)]


def alias_bundle_uri(settings: Settings, alias: str) -> str | None:
    """Where the version ``alias`` points at was published, or None when the alias is unset."""
    with connect(settings, f"{alias} lookup") as registry:
        version = registry.alias_version(alias)
        if version is None:
            return None
        return registry.client.get_model_version(registry.name, version).tags.get(TAG_BUNDLE_URI)
