"""Retraining that starts itself once per incident: the decision, the incident key, the trigger.

The monitor (``churn monitor``, the ``churn-monitoring`` pipeline) hands its verdict over as
:class:`MonitorSignals`; :func:`decide` turns them into a :class:`Decision` under a
:class:`RetrainPolicy`:

- **performance**: the label-free estimate (CBPE) or the realised ROC AUC is below ``min_auc``;
- **concept**: realised and estimated AUC of the same window differ by more than ``max_gap``
  (the estimate cannot see a change in the churn process itself; the gap can);
- **drift**: the monitor raised an alert (effect size over its alert level) and ``on_drift``.

A window the monitor called too small decides nothing. :func:`trigger_retrain` then claims the
incident in the durable record (:mod:`components.retrain_claims`: one claim per incident key and
none inside the cooldown, atomic across processes) and only the claimant submits the training
pipeline through the ``submit`` callable it is given (``kfp.local`` or a KFP server: the
callers in ``pipelines/`` and the ``churn-monitoring`` pipeline choose; this module never imports
them).
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from components.config import ConfigError, Settings
from components.params import PipelineParams
from components.registry_names import registered_model_for

log = logging.getLogger(__name__)

PERFORMANCE, CONCEPT, DRIFT = "performance", "concept", "drift"
KINDS: tuple[str, ...] = (PERFORMANCE, CONCEPT, DRIFT)  # precedence: the first that fires names the incident


@dataclass(frozen=True)
class MonitorSignals:
    """What one monitor run found, as far as retraining cares.

    ``window_end`` is an ISO-8601 time (the end of the payload window the monitor read);
    ``alerts`` are the monitor's alert lines (drift at or over the alert level), already
    corrected for the number of features and above the minimum sample size.
    """

    registered_model: str
    model_version: str
    window_start: str
    window_end: str
    rows: int
    enough_data: bool
    alerts: tuple[str, ...] = ()
    estimated_auc: float | None = None
    realised_auc: float | None = None
    # CBPE's estimate on exactly the labelled rows realised_auc was measured on (the reconciliation)
    reconciled_estimate: float | None = None

    def window_end_epoch(self) -> float:
        """``window_end`` in seconds since the epoch; a :class:`ConfigError` names a bad value."""
        try:
            stamp = datetime.fromisoformat(self.window_end.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(f"window_end must be an ISO-8601 time, got {self.window_end!r}") from None
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=timezone.utc)
        return stamp.timestamp()


# The monitor's checks that are drift (the performance checks are read as numbers, below).
DRIFT_CHECKS = ("data_drift", "unknown_categories", "prediction_drift")


def signals_from_result(result: dict) -> MonitorSignals:
    """The :class:`MonitorSignals` of a monitor result (``MonitorResult.to_dict()``, the JSON of
    ``churn monitor run``); a :class:`ConfigError` when its model is not a registered version."""
    from components.monitoring.monitor import ALERT, NOT_ENOUGH

    model, window = result.get("model") or {}, result["window"]
    if not model.get("registered_model") or not model.get("registry_version"):
        raise ConfigError(
            f"the monitored model ({model.get('bundle') or 'unknown bundle'}) is not a registered "
            "version: retraining needs the registered model and version it would replace"
        )
    checks = result.get("checks") or []
    live = result.get("live") or {}
    recon = ((result.get("reconciliation") or {}).get("metrics") or {}).get("roc_auc") or {}
    return MonitorSignals(
        registered_model=model["registered_model"],
        model_version=str(model["registry_version"]),
        window_start=window.get("since") or window.get("first") or "",
        window_end=window.get("until") or window.get("last") or "",
        rows=int(result["rows"]),
        enough_data=not any(c["check"] == "window" and c["level"] == NOT_ENOUGH for c in checks),
        alerts=tuple(
            f"{c['check']}:{c['feature']}: {c['reason']}"
            if c.get("feature")
            else f"{c['check']}: {c['reason']}"
            for c in checks
            if c["check"] in DRIFT_CHECKS and c["level"] == ALERT
        ),
        estimated_auc=((result.get("estimate") or {}).get("roc_auc") or {}).get("value"),
        realised_auc=(live.get("metrics") or {}).get("roc_auc"),
        reconciled_estimate=recon.get("estimated"),
    )


@dataclass(frozen=True)
class RetrainPolicy:
    """When the monitor's verdict starts a retrain, and how often at most."""

    on_drift: bool = True
    min_auc: float = 0.70  # the gate's ROC AUC floor: a model below it would not be registered today
    max_gap: float = 0.05  # |realised - estimated| ROC AUC on the same window
    cooldown_s: float = 24 * 3600.0  # after a retrain starts, no other for this long (any reason)

    def __post_init__(self) -> None:
        if not 0.0 < self.min_auc < 1.0:
            raise ConfigError(f"min_auc must be between 0 and 1, got {self.min_auc}")
        if not 0.0 < self.max_gap < 1.0:
            raise ConfigError(f"max_gap must be between 0 and 1, got {self.max_gap}")
        if not (math.isfinite(self.cooldown_s) and self.cooldown_s > 0):
            raise ConfigError(f"cooldown_s must be a positive number of seconds, got {self.cooldown_s}")


@dataclass(frozen=True)
class Decision:
    """Whether to retrain; ``kind`` names the incident (the first of :data:`KINDS` that fired)."""

    retrain: bool
    kind: str | None
    reasons: tuple[str, ...] = field(default=())

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons) if self.reasons else "no retraining needed"


def decide(signals: MonitorSignals, policy: RetrainPolicy) -> Decision:
    """The policy applied to one monitor verdict (see the module docstring for the rules)."""
    if not signals.enough_data:
        return Decision(
            False, None, (f"not enough data in the window ({signals.rows} rows): nothing decided",)
        )
    fired: dict[str, list[str]] = {kind: [] for kind in KINDS}
    for name, value in (("estimated", signals.estimated_auc), ("realised", signals.realised_auc)):
        if value is not None and value < policy.min_auc:
            fired[PERFORMANCE].append(f"{name} ROC AUC {value:.4f} < {policy.min_auc:.4f}")
    estimated = (
        signals.reconciled_estimate if signals.reconciled_estimate is not None else signals.estimated_auc
    )
    if estimated is not None and signals.realised_auc is not None:
        gap = signals.realised_auc - estimated
        if abs(gap) > policy.max_gap:
            fired[CONCEPT].append(
                f"realised ROC AUC {signals.realised_auc:.4f} vs estimated {estimated:.4f}: "
                f"gap {gap:+.4f} beyond {policy.max_gap:.4f} "
                "(concept drift: the estimate alone cannot see it)"
            )
    if policy.on_drift and signals.alerts:
        shown = ", ".join(signals.alerts[:5]) + (
            f" (+{len(signals.alerts) - 5} more)" if len(signals.alerts) > 5 else ""
        )
        fired[DRIFT].append(f"{len(signals.alerts)} drift alert(s): {shown}")
    kinds = [kind for kind in KINDS if fired[kind]]
    if not kinds:
        return Decision(False, None)
    return Decision(True, kinds[0], tuple(line for kind in kinds for line in fired[kind]))


def incident_key(signals: MonitorSignals, kind: str, cooldown_s: float) -> str:
    """The idempotency key of an incident: model, served version, reason kind, cooldown bucket.

    Monitors that run every few minutes (or two at once) over windows ending in the same
    cooldown-long bucket name the same incident, so at most one of them claims it; windows in
    neighbouring buckets get different keys, and the cooldown (checked under the same lock)
    keeps those from starting a second retrain.
    """
    bucket = int(signals.window_end_epoch() // cooldown_s)
    text = "\n".join((signals.registered_model, signals.model_version, kind, f"{cooldown_s:g}", str(bucket)))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class RetrainOutcome:
    """What :func:`trigger_retrain` did: ``action`` is ``none``, ``skipped`` or ``submitted``."""

    action: str
    decision: Decision
    key: str | None = None
    message: str = ""
    submitted: dict | None = None

    def to_dict(self) -> dict:
        return {
            "action": self.action,
            "retrain": self.decision.retrain,
            "kind": self.decision.kind,
            "reasons": list(self.decision.reasons),
            "key": self.key,
            "message": self.message,
            "submitted": self.submitted,
        }


# submit(params, run_name) -> what was started: {"id": ..., plus whatever the submitter reports}
Submitter = Callable[[PipelineParams, str], dict]


def retrain_params(base: PipelineParams, data_uri: str, signals: MonitorSignals) -> PipelineParams:
    """The training run's parameters: ``base`` on ``data_uri``, which must be labelled data of the
    monitored model's own lineage (else the new version would land in another registered model)."""
    from dataclasses import replace

    if not data_uri:
        raise ConfigError(
            "no fresh labelled data to retrain on: set CHURN_RETRAIN_DATA_URI "
            "(or pass --data / retrain_data_uri)"
        )
    base_name = signals.registered_model.removesuffix("-synthetic")
    target = registered_model_for(data_uri, base_name)
    if target != signals.registered_model:
        raise ConfigError(
            f"retrain data {data_uri!r} would register under {target!r}, but the monitored model is "
            f"{signals.registered_model!r}: retrain on data of the same lineage"
        )
    return replace(base, data_uri=data_uri)


def trigger_retrain(
    signals: MonitorSignals,
    policy: RetrainPolicy,
    params: PipelineParams,
    settings: Settings,
    submit: Submitter,
    *,
    owner: str = "churn retrain check",
) -> RetrainOutcome:
    """Decide; when retraining is due, claim the incident and, only if this caller won the claim,
    submit the training run of ``params`` and record what was started (or that it failed)."""
    from components import retrain_claims

    decision = decide(signals, policy)
    if not decision.retrain:
        return RetrainOutcome("none", decision, message=decision.reason)
    key = incident_key(signals, decision.kind, policy.cooldown_s)
    claim = retrain_claims.claim(
        settings, signals, decision, key, policy.cooldown_s, data_uri=params.data_uri, owner=owner
    )
    if claim.existing is not None:
        log.info("retrain %s: %s", key, claim.message)
        return RetrainOutcome("skipped", decision, key, claim.message)
    run_name = f"retrain-{decision.kind}-{key[:12]}"
    log.info("retrain %s claimed (%s): submitting %s", key, decision.reason, run_name)
    try:
        submitted = submit(params, run_name)
    except BaseException as exc:
        retrain_claims.mark_failed(
            settings, signals.registered_model, claim.record_id, f"{type(exc).__name__}: {exc}"
        )
        raise
    retrain_claims.mark_submitted(settings, signals.registered_model, claim.record_id, submitted)
    return RetrainOutcome("submitted", decision, key, f"submitted {run_name}: {decision.reason}", submitted)
