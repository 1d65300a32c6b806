"""Where a rollout is, kept on the InferenceService (annotations) and mirrored on the MLflow version.

The annotations are the source of truth: they are written in the same merge patch as the traffic
share they describe, so the object can never say "50 %" in its spec and "step 10 %" in its
state. The MLflow version's ``rollout_state`` tag (:data:`components.registry_names.TAG_ROLLOUT`)
mirrors them for people reading the registry; ``resume`` rewrites it from the annotations.
This module owns the annotation names and both encodings.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, replace

from components.errors import ChurnError

PREFIX = "rollout.churn.io/"
A_VERSION = PREFIX + "version"  # the challenger being rolled out
A_STABLE = PREFIX + "stable-version"  # what served before (the champion at start); "" for a first deploy
A_PHASE = PREFIX + "phase"
A_STEP = PREFIX + "step"  # index into the plan's steps
A_PLAN = PREFIX + "plan"  # RolloutPlan.to_text()
A_STEP_STARTED = PREFIX + "step-started-at"  # epoch seconds: when this step's share took effect
A_STARTED = PREFIX + "started-at"
A_DRIVER = PREFIX + "driver"  # who drives it: "owner (pid P on HOST)"
A_MODEL = PREFIX + "registered-model"
A_REASON = PREFIX + "reason"  # why it ended (promoted / rolled back)
ANNOTATIONS = (A_VERSION, A_STABLE, A_PHASE, A_STEP, A_PLAN, A_STEP_STARTED, A_STARTED, A_DRIVER, A_MODEL,
               A_REASON)  # fmt: skip

CANARY = "canary"  # in progress: traffic is split, the plan runs
PROMOTED = "promoted"  # all traffic on the version, alias champion on it
ROLLED_BACK = "rolled-back"  # the version gets 0 %, tagged rejected
PHASES = (CANARY, PROMOTED, ROLLED_BACK)

MAX_REASON_CHARS = 1000  # an annotation is small; the whole reason goes to MLflow


class RolloutStateError(ChurnError, ValueError):
    """The rollout annotations on the InferenceService are unreadable; the message names the key."""


@dataclass(frozen=True)
class RolloutState:
    """One rollout of ``version`` of ``registered_model`` replacing ``stable_version``."""

    registered_model: str
    version: str
    stable_version: str | None
    phase: str
    step: int
    plan: str
    started_at: float
    step_started_at: float
    driver: str
    reason: str = ""

    @property
    def in_progress(self) -> bool:
        return self.phase == CANARY

    def at_step(self, step: int, *, now: float | None = None) -> RolloutState:
        return replace(self, step=step, step_started_at=time.time() if now is None else now)

    def ended(self, phase: str, reason: str) -> RolloutState:
        return replace(self, phase=phase, reason=reason[:MAX_REASON_CHARS])

    def annotations(self) -> dict[str, str]:
        """The annotations that record this state (every value a string, as Kubernetes wants)."""
        return {
            A_MODEL: self.registered_model,
            A_VERSION: self.version,
            A_STABLE: self.stable_version or "",
            A_PHASE: self.phase,
            A_STEP: str(self.step),
            A_PLAN: self.plan,
            A_STARTED: repr(self.started_at),
            A_STEP_STARTED: repr(self.step_started_at),
            A_DRIVER: self.driver,
            A_REASON: self.reason,
        }

    @classmethod
    def from_annotations(cls, annotations: dict[str, str] | None) -> RolloutState | None:
        """The state recorded in ``annotations``, or None when no rollout ever ran on the object."""
        annotations = annotations or {}
        if A_VERSION not in annotations:
            return None
        missing = [k for k in ANNOTATIONS if k not in annotations]
        if missing:
            raise RolloutStateError(f"InferenceService annotations: {', '.join(missing)} missing")
        phase = annotations[A_PHASE]
        if phase not in PHASES:
            raise RolloutStateError(f"annotation {A_PHASE}: {phase!r} is not one of {PHASES}")
        try:
            return cls(
                registered_model=annotations[A_MODEL],
                version=annotations[A_VERSION],
                stable_version=annotations[A_STABLE] or None,
                phase=phase,
                step=int(annotations[A_STEP]),
                plan=annotations[A_PLAN],
                started_at=float(annotations[A_STARTED]),
                step_started_at=float(annotations[A_STEP_STARTED]),
                driver=annotations[A_DRIVER],
                reason=annotations[A_REASON],
            )
        except ValueError as exc:
            raise RolloutStateError(f"InferenceService rollout annotations unreadable: {exc}") from exc

    def to_tag(self, namespace: str, name: str) -> str:
        """The JSON of the MLflow version's ``rollout_state`` tag (also names the object)."""
        return json.dumps({"inferenceservice": f"{namespace}/{name}", **asdict(self)}, sort_keys=True)
