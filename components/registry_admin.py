"""Registry operations behind ``churn registry ...``: list/search, show, compare, promote, rollback.

Promote and rollback move aliases under the same promotion lock as the pipeline's register
step and write the same audit trail (:mod:`components.audit`), so manual and automatic moves
are serialised and recorded alike.
"""

from __future__ import annotations

import json
import operator
import re
import tempfile
from pathlib import Path

from components import audit
from components.config import Settings
from components.gate import load_labelled
from components.registry import (
    CHAMPION,
    KEY_METRICS,
    LINEAGE_TAGS,
    TAG_BUNDLE_SHA,
    TAG_BUNDLE_URI,
    TAG_GATE,
    TAG_GATE_REASONS,
    TAG_PROMOTION,
    TAG_STATE,
    RegistryError,
    alias_version,
    bounded_mlflow,
    mlflow_client,
    mlflow_errors,
    preflight,
    rescore_version,
)
from components.storage import fetch

_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq}
_FILTER = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(>=|<=|==|>|<|=)\s*([-+0-9.eE]+)\s*$")


def _connected(settings: Settings):
    client = mlflow_client(settings)
    preflight(client, settings)
    return client


def _aliases_by_version(client, name: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for alias, version in client.get_registered_model(name).aliases.items():
        out.setdefault(str(version), []).append(alias)
    return {v: sorted(a) for v, a in out.items()}


def _get_version(client, settings: Settings, version: str):
    from mlflow.exceptions import MlflowException

    if not str(version).isdigit():
        raise RegistryError(f"VERSION must be a version number, got {version!r}")
    try:
        return client.get_model_version(settings.registered_model, str(version))
    except MlflowException as exc:
        raise RegistryError(f"{settings.registered_model} v{version}: not found ({exc.error_code})") from exc


def parse_metric_filter(text: str):
    """``"roc_auc>=0.8"`` -> ``(metric, op, value)``; errors name the filter."""
    match = _FILTER.match(text)
    if not match:
        raise RegistryError(f"--metric {text!r}: expected NAME OP NUMBER, e.g. 'roc_auc>=0.8'")
    name, op, value = match.groups()
    return name, _OPS["==" if op == "=" else op], float(value)


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
    tags: dict[str, str] | None = None,
    metric_filters: list[str] | None = None,
    limit: int = 50,
) -> list[dict]:
    """Versions, newest first, optionally filtered by alias, tag equality and metric bounds."""
    filters = [parse_metric_filter(f) for f in metric_filters or []]
    name = settings.registered_model
    with bounded_mlflow(settings), mlflow_errors(settings, "list versions"):
        client = _connected(settings)
        clauses = [f"name = '{name}'"] + [f"tags.`{k}` = '{v}'" for k, v in (tags or {}).items()]
        try:
            found = client.search_model_versions(" AND ".join(clauses))
        except Exception as exc:
            if "RESOURCE_DOES_NOT_EXIST" in str(exc):
                return []
            raise
        aliases = _aliases_by_version(client, name) if found else {}
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
    name = settings.registered_model
    with bounded_mlflow(settings), mlflow_errors(settings, f"show v{version}"):
        client = _connected(settings)
        mv = _get_version(client, settings, version)
        run = client.get_run(mv.run_id) if mv.run_id else None
        artifacts = _artifact_paths(client, mv.run_id) if mv.run_id else []
        history = [
            e.to_dict() for e in audit.history(client, name) if str(version) in (e.from_version, e.to_version)
        ]
        aliases = _aliases_by_version(client, name).get(str(version), [])
    tags = mv.tags
    return {
        "registered_model": name,
        "version": str(mv.version),
        "aliases": aliases,
        "state": tags.get(TAG_STATE),
        "gate": {"verdict": tags.get(TAG_GATE), "reasons": json.loads(tags.get(TAG_GATE_REASONS, "[]"))},
        "compared_against": tags.get("compared_against"),
        "promotion": tags.get(TAG_PROMOTION),
        "lineage": {k: tags.get(k) for k in LINEAGE_TAGS if tags.get(k)},
        "bundle": {"uri": tags.get(TAG_BUNDLE_URI), "sha256": tags.get(TAG_BUNDLE_SHA)},
        "source": mv.source,
        "run_id": mv.run_id,
        "metrics": dict(run.data.metrics) if run else {},
        "params": dict(run.data.params) if run else {},
        "artifacts": artifacts,
        "promotion_history": history,
    }


def _artifact_paths(client, run_id: str) -> list[str]:
    out, todo = [], [None]
    while todo:
        for info in client.list_artifacts(run_id, todo.pop()):
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
        with tempfile.TemporaryDirectory(prefix="churn-compare-") as tmp, bounded_mlflow(settings):
            X, y = load_labelled(fetch(data_uri, settings, Path(tmp)))
            client = mlflow_client(settings)
            with mlflow_errors(settings, "re-score"):
                out["rescored"] = {
                    "data": data_uri,
                    "rows": len(y),
                    "a": rescore_version(client, settings, a, X, y, Path(tmp)),
                    "b": rescore_version(client, settings, b, X, y, Path(tmp)),
                }
    return out


def _move_alias(client, settings: Settings, alias: str, to_version: str, reason: str, via: str) -> dict:
    name = settings.registered_model
    before = alias_version(client, name, alias)
    if before == str(to_version):
        return {"alias": alias, "from": before, "to": before, "moved": False}
    client.set_registered_model_alias(name, alias, str(to_version))
    event = audit.record(
        client, name, alias=alias, from_version=before, to_version=to_version, reason=reason, via=via
    )
    if alias == CHAMPION:
        client.set_model_version_tag(name, str(to_version), TAG_PROMOTION, f"champion ({via}: {reason})")
    return {"alias": alias, "from": before, "to": str(to_version), "moved": True, "event": event.to_dict()}


def promote(
    settings: Settings,
    version: str,
    *,
    reason: str,
    alias: str = CHAMPION,
    force: bool = False,
    via: str = "cli promote",
) -> dict:
    """Point ``alias`` at ``version`` (audited); refuses incomplete versions and unforced gate failures."""
    if not reason or not reason.strip():
        raise RegistryError("--reason: required (it goes into the audit trail)")
    name = settings.registered_model
    with bounded_mlflow(settings), mlflow_errors(settings, f"promote v{version}"):
        client = _connected(settings)
        mv = _get_version(client, settings, version)
        if mv.tags.get(TAG_STATE) != "complete" or not mv.tags.get(TAG_BUNDLE_URI):
            raise RegistryError(
                f"{name} v{version}: registration incomplete (no published bundle); cannot promote"
            )
        if mv.tags.get(TAG_GATE) != "passed" and not force:
            raise RegistryError(
                f"{name} v{version}: quality gate {mv.tags.get(TAG_GATE)} "
                f"({mv.tags.get(TAG_GATE_REASONS)}); use --force to promote anyway"
            )
        with audit.promotion_lock(client, name, owner=f"{via} by {audit.actor()}"):
            return _move_alias(client, settings, alias, str(mv.version), reason.strip(), via)


def rollback(settings: Settings, *, reason: str = "rollback", via: str = "cli rollback") -> dict:
    """Move ``champion`` back to the champion before the current one (per the audit trail)."""
    name = settings.registered_model
    with bounded_mlflow(settings), mlflow_errors(settings, "rollback"):
        client = _connected(settings)
        with audit.promotion_lock(client, name, owner=f"{via} by {audit.actor()}"):
            current = alias_version(client, name, CHAMPION)
            if current is None:
                raise RegistryError(f"{name}: no champion to roll back")
            stack = audit.champion_stack(audit.history(client, name))
            if not stack or stack[-1] != current:  # alias moved outside this tool: trust the alias
                stack.append(current)
            previous = next((v for v in reversed(stack[:-1]) if v != current), None)
            if previous is None:
                raise RegistryError(f"{name}: champion v{current} has no previous champion to roll back to")
            return _move_alias(client, settings, CHAMPION, previous, reason, via)
