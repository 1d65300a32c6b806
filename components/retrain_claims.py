"""The durable record of retraining incidents: one claim per incident, atomic across processes.

Why MLflow and the promotion lock (and not an S3 conditional put): every deployment already has
the MLflow tracking store (SQLite on a laptop, PostgreSQL behind a server in a cluster) and its
lock (:mod:`components.registry.lock`, an atomic create tested on both), whereas the model store
may be a local folder and not every S3-compatible server honours ``If-None-Match``. And a
cooldown ("no retrain started in the last N hours, for any reason") is a read-then-write over
*all* recent records, which a conditional put of one key cannot make atomic; a lock can. The lock
is the registered model's own promotion lock, held only for the read and the write (well under a
second), so a retrain decision and an alias move of the same model never interleave.

Each claim is an MLflow run in the experiment ``<CHURN_EXPERIMENT>.retraining`` (closed at once:
its state lives in tags, read with ``churn retrain list``). A claim counts against a new incident
unless it ``failed`` (submission raised) or it is still ``claimed`` by a process that is
provably gone (died before submitting): such an incident may be claimed again.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace

from components.config import Settings
from components.registry.client import Registry, already_exists, connect
from components.registry.holder import Holder, when
from components.registry.lock import promotion_lock
from components.registry.queries import filter_string

EXPERIMENT_SUFFIX = ".retraining"
PREFIX = "churn.retrain."
TAG_KEY = PREFIX + "key"
TAG_MODEL = PREFIX + "registered_model"
TAG_VERSION = PREFIX + "model_version"
TAG_KIND = PREFIX + "kind"
TAG_REASON = PREFIX + "reason"
TAG_WINDOW = PREFIX + "window"
TAG_DATA = PREFIX + "data_uri"
TAG_STATUS = PREFIX + "status"
TAG_CLAIMED_AT = PREFIX + "claimed_at"
TAG_OWNER = PREFIX + "owner"
TAG_SUBMITTED = PREFIX + "submitted"  # JSON: what the submitter started (run id, version, gate)
TAG_ERROR = PREFIX + "error"
HOLDER_PREFIX = PREFIX + "holder."
CLAIMED, SUBMITTED, FAILED = "claimed", "submitted", "failed"
MAX_TAG_CHARS = 5000  # MLflow's SQL schema stores tag values in VARCHAR(5000)
RECENT = 200  # records read per claim: a cooldown never spans more retrains than this


@dataclass(frozen=True)
class Record:
    """One incident's claim as read back from its tags."""

    record_id: str
    key: str
    registered_model: str
    model_version: str
    kind: str
    reason: str
    window: str
    status: str
    claimed_at: float
    owner: str
    holder: Holder | None
    submitted: dict | None
    error: str | None

    @classmethod
    def from_run(cls, run) -> Record:
        tags = run.data.tags
        submitted = tags.get(TAG_SUBMITTED)
        return cls(
            record_id=run.info.run_id,
            key=tags.get(TAG_KEY, ""),
            registered_model=tags.get(TAG_MODEL, ""),
            model_version=tags.get(TAG_VERSION, ""),
            kind=tags.get(TAG_KIND, ""),
            reason=tags.get(TAG_REASON, ""),
            window=tags.get(TAG_WINDOW, ""),
            status=tags.get(TAG_STATUS, ""),
            claimed_at=float(tags.get(TAG_CLAIMED_AT) or 0.0),
            owner=tags.get(TAG_OWNER, ""),
            holder=Holder.from_tags(tags, HOLDER_PREFIX),
            submitted=json.loads(submitted) if submitted else None,
            error=tags.get(TAG_ERROR),
        )

    def counts(self) -> bool:
        """Whether this claim still stands against a new one (module docstring)."""
        if self.status == FAILED:
            return False
        return not (self.status == CLAIMED and self.holder is not None and self.holder.provably_gone())

    def to_dict(self) -> dict:
        return {
            "record_id": self.record_id,
            "key": self.key,
            "registered_model": self.registered_model,
            "model_version": self.model_version,
            "kind": self.kind,
            "reason": self.reason,
            "window": self.window,
            "status": self.status,
            "claimed_at": when(self.claimed_at),
            "owner": self.owner,
            "submitted": self.submitted,
            "error": self.error,
        }


@dataclass(frozen=True)
class Claim:
    """The answer to :func:`claim`: this caller's new record, or the one that stands in its way."""

    record_id: str | None
    existing: Record | None
    message: str


def _settings_for(settings: Settings, registered_model: str) -> Settings:
    return replace(settings, registered_model=registered_model)


def _experiment_id(registry: Registry, create: bool) -> str | None:
    """The records' experiment (created on the first claim; the caller holds the lock)."""
    from mlflow.exceptions import MlflowException

    settings = registry.settings
    name = settings.experiment + EXPERIMENT_SUFFIX
    found = registry.client.get_experiment_by_name(name)
    if found is not None or not create:
        return None if found is None else found.experiment_id
    # Records hold tags only; a remote server keeps its own artifact root (as tracking.py does).
    root = settings.mlflow_artifact_root
    location = None if settings.mlflow_tracking_uri.startswith("http") and root.startswith("file:") else root
    try:
        return registry.client.create_experiment(name, artifact_location=location)
    except MlflowException as exc:  # a claimant of another registered model created it meanwhile
        if not already_exists(exc):
            raise
        return registry.client.get_experiment_by_name(name).experiment_id


def _records(
    registry: Registry, experiment_id: str, registered_model: str, limit: int = RECENT
) -> list[Record]:
    runs = registry.client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{TAG_MODEL}` = {filter_string(registered_model, 'registered model')}",
        order_by=["attributes.start_time DESC"],
        max_results=limit,
    )
    return [Record.from_run(run) for run in runs]


def claim(
    settings: Settings,
    signals,
    decision,
    key: str,
    cooldown_s: float,
    *,
    data_uri: str,
    owner: str,
) -> Claim:
    """Under the model's promotion lock: refuse when a standing claim has ``key`` or was made
    less than ``cooldown_s`` ago; otherwise write this caller's claim. ``signals`` and
    ``decision`` are :class:`components.retrain.MonitorSignals` / ``Decision``."""
    model_settings = _settings_for(settings, signals.registered_model)
    with (
        connect(model_settings, f"claim retrain incident {key}") as registry,
        promotion_lock(registry, owner=f"{owner} (retrain claim {key[:12]})", timeout_s=60.0),
    ):
        experiment_id = _experiment_id(registry, create=True)
        stamp = time.time()
        for record in _records(registry, experiment_id, signals.registered_model):
            if not record.counts():
                continue
            if record.key == key:
                return Claim(
                    None,
                    record,
                    f"incident {key} already claimed at {when(record.claimed_at)} "
                    f"by {record.owner} (status {record.status}): not retraining again",
                )
            if stamp - record.claimed_at < cooldown_s:
                return Claim(
                    None,
                    record,
                    f"in cooldown: a retrain ({record.kind}, incident {record.key}) "
                    f"started at {when(record.claimed_at)}, less than {cooldown_s:g} s ago",
                )
        tags = {
            TAG_KEY: key,
            TAG_MODEL: signals.registered_model,
            TAG_VERSION: signals.model_version,
            TAG_KIND: decision.kind,
            TAG_REASON: decision.reason[:MAX_TAG_CHARS],
            TAG_WINDOW: f"{signals.window_start}/{signals.window_end}",
            TAG_DATA: data_uri,
            TAG_STATUS: CLAIMED,
            TAG_CLAIMED_AT: repr(stamp),
            TAG_OWNER: owner,
            **Holder.current().tags(HOLDER_PREFIX),
        }
        run = registry.client.create_run(experiment_id, tags=tags, run_name=f"retrain-{key[:12]}")
        registry.client.set_terminated(run.info.run_id, "FINISHED")
    return Claim(run.info.run_id, None, f"incident {key} claimed")


def _set(settings: Settings, registered_model: str, record_id: str, tags: dict[str, str], what: str) -> None:
    with connect(_settings_for(settings, registered_model), what) as registry:
        for name, value in tags.items():
            registry.client.set_tag(record_id, name, value[:MAX_TAG_CHARS])


def mark_submitted(settings: Settings, registered_model: str, record_id: str, submitted: dict) -> None:
    """Record what the claimant started (a KFP run id, or the local run's version and gate)."""
    _set(
        settings,
        registered_model,
        record_id,
        {TAG_STATUS: SUBMITTED, TAG_SUBMITTED: json.dumps(submitted, sort_keys=True)},
        "record a submitted retrain",
    )


def mark_failed(settings: Settings, registered_model: str, record_id: str, error: str) -> None:
    """The submission failed: the claim no longer stands, so a later monitor run may retry."""
    _set(
        settings,
        registered_model,
        record_id,
        {TAG_STATUS: FAILED, TAG_ERROR: error},
        "record a failed retrain",
    )


def list_records(settings: Settings, registered_model: str, limit: int = 50) -> list[Record]:
    """The newest claims of ``registered_model``, newest first (none before the first claim)."""
    with connect(_settings_for(settings, registered_model), "list retrain incidents") as registry:
        experiment_id = _experiment_id(registry, create=False)
        return [] if experiment_id is None else _records(registry, experiment_id, registered_model, limit)
