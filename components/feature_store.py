"""The Feast feature store of the project: apply, publish history, materialize, build training sets.

The definitions live in ``feature_repo/`` (entity ``customer``; views ``account``, ``services``,
``billing``; feature service ``churn_model`` = the schema's features). Which configuration is
used comes from :class:`~components.config.Settings`: ``embedded`` (``feature_repo/feature_store.yaml``:
local files, duckdb offline store, SQLite online store) or ``production``
(``feature_repo/environments/production.yaml``: the same offline store on S3 tables, Redis online).
The YAML files name their paths as ``${CHURN_...}``; :func:`feast_env` fills them from Settings.

Training from the store (:func:`training_table`) is a point-in-time join
(``get_historical_features``): each labelled row ``(customerID, as_of)`` gets the newest feature
row at or before ``as_of`` and within the view's ttl, never one written later. The result is the
raw Telco table ingest already takes, so ``churn run --features feast`` is the same pipeline: ingest
reads the source URI ``feast://?labels=URI`` (:func:`source_uri`) through :func:`read_feast_source`.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, quote, urlparse

import pandas as pd

from components import history, schema, storage
from components.artifacts import FEATURE_LINEAGE
from components.config import ConfigError, Settings
from components.errors import ChurnError

log = logging.getLogger(__name__)

# The YAML of each Settings.feature_store_env, relative to Settings.feature_repo.
CONFIG_FILES = {"embedded": Path("feature_store.yaml"), "production": Path("environments/production.yaml")}
FEATURE_SERVICE = "churn_model"
VIEWS: tuple[str, ...] = tuple(history.GROUPS)
SCHEME = "feast://"


class FeatureStoreError(ChurnError, RuntimeError):
    """The feature store cannot give what was asked (no labels, missing features, not applied)."""


def feast_env(settings: Settings) -> dict[str, str]:
    """The environment the feature_repo YAML files read (``${CHURN_...}``), from ``settings``."""
    return {
        "CHURN_FEATURE_HOME": str(settings.feature_home),
        "CHURN_FEATURE_DATA": settings.feature_data_uri,
        "CHURN_FEATURE_REGISTRY": settings.feature_registry,
        "CHURN_REDIS_CONNECTION": settings.redis_connection,
    }


def config_file(settings: Settings) -> Path:
    """The feature_repo YAML of ``settings.feature_store_env``."""
    return settings.feature_repo / CONFIG_FILES[settings.feature_store_env]


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def open_store(settings: Settings):
    """A ``feast.FeatureStore`` on ``settings``' configuration (``feast`` is imported here: ~6 s)."""
    from feast import FeatureStore

    if not storage.is_s3(settings.feature_registry):
        Path(settings.feature_registry).parent.mkdir(parents=True, exist_ok=True)
    settings.feature_home.mkdir(parents=True, exist_ok=True)
    with _environment(feast_env(settings)):
        return FeatureStore(repo_path=str(settings.feature_repo), fs_yaml_file=config_file(settings))


def apply(settings: Settings):
    """``feast apply`` of ``feature_repo/`` into ``settings``' registry; return the store.

    Like the CLI it imports every .py file of the repo (re-imported, so the data location of
    these ``settings`` is the one registered) and applies every object found.
    """
    from feast.repo_operations import get_repo_files, parse_repo

    store = open_store(settings)
    repo_dir = settings.feature_repo
    cwd = os.getcwd()
    with _environment(feast_env(settings)):
        os.chdir(repo_dir)  # feast names repo modules by their path relative to the cwd
        sys.path.insert(0, str(repo_dir))
        try:
            for path in get_repo_files(repo_dir):
                name = ".".join(path.relative_to(repo_dir).with_suffix("").parts)
                module = sys.modules.get(name)
                importlib.reload(module) if module else importlib.import_module(name)
            repo = parse_repo(repo_dir)
        finally:
            sys.path.remove(str(repo_dir))
            os.chdir(cwd)
    objects = [*repo.entities, *repo.data_sources, *repo.feature_views, *repo.feature_services]
    store.apply(objects)
    log.info("feature store: applied %d objects to %s", len(objects), settings.feature_registry)
    return store


def publish_history(hist: history.History, settings: Settings) -> dict[str, str]:
    """Write the history's feature tables where the feature views read them (local or s3://)."""
    target = settings.feature_data_uri.rstrip("/")
    if not storage.is_s3(target):
        return {k: str(v) for k, v in hist.write(Path(target)).items()}
    client = storage.s3_client(settings)
    uris = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in hist.write(Path(tmp)).items():
            where = storage.parse_s3(f"{target}/{path.name}")
            with storage.s3_errors(f"{target}/{path.name}", settings):
                client.fput_object(where.bucket, where.key, str(path))
            uris[name] = f"{target}/{path.name}"
    return uris


def materialize(store, start: datetime, end: datetime) -> None:
    """Load the feature rows with timestamps in ``[start, end]`` into the online store.

    ``materialize`` with an explicit window, not ``materialize_incremental``: the first incremental
    run loads nothing for back-dated data (measured with Feast 0.67).
    """
    store.materialize(start_date=start, end_date=end, feature_views=list(VIEWS))


def materialize_window(settings: Settings, start: str, end: str | None = None) -> str:
    """Open the store of ``settings`` and materialize ``[start, end]`` (ISO; end default now, UTC);
    the one line that says what was done. The step behind ``churn features materialize`` and the
    KFP ``materialize`` component (components/kfp_materialize.py)."""
    try:
        begin = pd.Timestamp(start, tz="UTC") if pd.Timestamp(start).tzinfo is None else pd.Timestamp(start)
        finish = pd.Timestamp.now(tz="UTC") if not end else pd.Timestamp(end, tz="UTC")
    except ValueError as exc:
        raise ConfigError(f"materialize window: {exc}") from exc
    if finish <= begin:
        raise ConfigError(
            f"materialize window: end {finish.isoformat()} is not after start {begin.isoformat()}"
        )
    store = open_store(settings)
    materialize(store, begin.to_pydatetime(), finish.to_pydatetime())
    return (f"materialized {', '.join(VIEWS)} from {begin.isoformat()} to {finish.isoformat()} "
            f"into the {settings.feature_store_env} online store")  # fmt: skip


def view_lineage(store) -> list[dict]:
    """Name, Feast version number and definition fingerprint of each view the model reads."""
    out = []
    for name in VIEWS:
        view = store.get_feature_view(name)
        spec = view.to_proto().spec
        spec.ClearField("version")  # the fingerprint is of the definition itself
        out.append(
            {
                "name": name,
                "version": view.current_version_number,
                "definition_sha256": hashlib.sha256(spec.SerializeToString(deterministic=True)).hexdigest(),
                "features": [f.name for f in view.features],
                "ttl_s": int(view.ttl.total_seconds()) if view.ttl else None,
            }
        )
    return out


def historical_features(store, labels: pd.DataFrame) -> pd.DataFrame:
    """Point-in-time join of ``labels`` (``customerID``, ``as_of``, ...) with the model's features.

    Every label row comes back (duckdb offline store: a row with no feature row inside a view's
    ttl gets nulls, it is not dropped), with ``as_of`` kept.
    """
    missing = [c for c in (schema.ID_COLUMN, history.AS_OF) if c not in labels]
    if missing:
        raise FeatureStoreError(f"labels: missing column(s) {missing}")
    entity = labels.rename(columns={history.AS_OF: history.TIMESTAMP}).copy()
    entity[history.TIMESTAMP] = pd.to_datetime(entity[history.TIMESTAMP], utc=True)
    joined = store.get_historical_features(
        entity_df=entity, features=store.get_feature_service(FEATURE_SERVICE)
    ).to_df()
    if len(joined) != len(labels):
        raise FeatureStoreError(f"point-in-time join returned {len(joined)} rows for {len(labels)} labels")
    return joined.rename(columns={history.TIMESTAMP: history.AS_OF})


def naive_join(hist: history.History, labels: pd.DataFrame) -> pd.DataFrame:
    """What a join without time looks like: each customer's LATEST snapshot, whatever the as-of.

    Only for showing the leak the point-in-time join prevents (tests, docs); never for training.
    """
    latest = [
        getattr(hist, g).sort_values(history.TIMESTAMP).groupby(schema.ID_COLUMN).tail(1) for g in VIEWS
    ]
    out = labels
    for frame in latest:
        out = out.merge(frame.drop(columns=[history.TIMESTAMP]), on=schema.ID_COLUMN, how="left")
    return out


def read_labels(uri: str, settings: Settings) -> pd.DataFrame:
    """A labels table (``customerID``, ``as_of``, ``Churn``) from a local path or s3:// (CSV/Parquet)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = storage.fetch(uri, settings, Path(tmp)) if storage.is_s3(uri) else Path(uri)
        if not path.is_file():
            raise FeatureStoreError(f"labels {uri}: no such file")
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    missing = [c for c in (schema.ID_COLUMN, history.AS_OF, schema.LABEL_COLUMN) if c not in frame]
    if missing:
        raise FeatureStoreError(f"labels {uri}: missing column(s) {missing}")
    if frame.empty:
        raise FeatureStoreError(f"labels {uri}: no rows")
    try:
        frame[history.AS_OF] = pd.to_datetime(frame[history.AS_OF], utc=True)
    except (ValueError, TypeError) as exc:
        raise FeatureStoreError(f"labels {uri}: column {history.AS_OF!r} is not a date ({exc})") from exc
    return frame


def training_table(store, labels: pd.DataFrame, labels_uri: str) -> pd.DataFrame:
    """The raw Telco table (schema columns + label) for ``labels``, point-in-time joined.

    One row per customer, its latest as-of date: ingest keys rows by ``customerID`` and the
    train/valid/test splits must not share a customer. ``attrs[FEATURE_LINEAGE]`` records the feature
    views, their versions and the as-of range (copied into the run's lineage by ingest).
    """
    latest = (
        labels.sort_values(history.AS_OF).groupby(schema.ID_COLUMN, sort=False).tail(1).reset_index(drop=True)
    )
    joined = historical_features(store, latest[[schema.ID_COLUMN, history.AS_OF, schema.LABEL_COLUMN]])
    table = joined[list(schema.REQUIRED_COLUMNS)].copy()
    table.attrs[FEATURE_LINEAGE] = {
        "feature_service": FEATURE_SERVICE,
        "views": view_lineage(store),
        "labels_uri": labels_uri,
        "label_rows": len(labels),
        "rows": len(table),
        "as_of_min": joined[history.AS_OF].min().isoformat(),
        "as_of_max": joined[history.AS_OF].max().isoformat(),
    }
    return table


def source_uri(labels_uri: str) -> str:
    """The ingest source URI of a training set built from the store for ``labels_uri``."""
    if not labels_uri:
        raise ConfigError("--features feast needs --labels URI (customerID, as_of, Churn)")
    return f"{SCHEME}?labels={quote(labels_uri, safe='')}"


def read_feast_source(uri: str, settings: Settings) -> pd.DataFrame:
    """Ingest's reader of ``feast://?labels=URI``: the training table of those labels."""
    query = parse_qs(urlparse(uri).query)
    if "labels" not in query:
        raise FeatureStoreError(f"{uri}: expected {SCHEME}?labels=URI")
    labels_uri = query["labels"][-1]
    store = open_store(settings)
    try:
        store.get_feature_service(FEATURE_SERVICE)
    except Exception as exc:  # feast raises its own NotFound types per registry backend
        raise FeatureStoreError(
            f"feature store {settings.feature_registry}: no feature service {FEATURE_SERVICE!r}; "
            f"apply feature_repo/ first (churn features apply) ({exc})"
        ) from exc
    return training_table(store, read_labels(labels_uri, settings), labels_uri)
