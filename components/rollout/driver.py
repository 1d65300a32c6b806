"""The rollout driver: a registry version onto an InferenceService as a KServe canary, step by step.

One rollout (``docs/deploy.md`` has the operator's view):

1. **start**: the version must be registered completely, have passed its gate, not be rejected,
   and name the serving image tag CD pushed with it; the champion (if any) is the stable
   version. One merge patch sets the new ``storageUri`` and ``runtimeVersion`` (the image tag),
   ``canaryTrafficPercent`` = the plan's first share, tag routing, and the rollout annotations
   (:mod:`components.rollout.state`). A first deployment (no champion) has nothing to compare
   with: it goes to 100 % and is promoted once Ready.
2. **each step**: wait until the new revision is Ready (not Ready in time, or failed: rollback),
   bake for the plan's bake time, ask the analysis for a verdict (stored on the MLflow version);
   promote -> the next share (one patch: share + step annotation), hold -> wait and ask again (up
   to the plan's hold timeout, then rollback), rollback -> rollback.
3. **promote**: one patch sends all traffic to the new revision (``canaryTrafficPercent``
   removed) and records the last step; then ``champion`` moves through the one alias-move
   function (:func:`components.registry.promotion.move_alias`, compare-and-set against the
   stable version, audited); then one patch records phase ``promoted``.
4. **rollback**: one patch sets ``canaryTrafficPercent: 0`` (the previous revision serves
   everything) and phase ``rolled-back``; then the version is tagged ``rollout_rejected`` with the
   reasons.

Every action is a merge patch whose effect is recorded in the same patch, so re-running after an
interruption anywhere (``resume``, or ``start`` of the same version) redoes at most the step that
was cut short. One driver at a time: the rollout lock (the promotion lock's mechanism, kind
``rollout``, held in MLflow with a heartbeat) makes a second driver refuse at once, naming the first.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

from components.config import Settings
from components.errors import ChurnError
from components.registry.audit import actor
from components.registry.client import Registry, RegistryError, connect
from components.registry.lock import promotion_lock
from components.registry.promotion import move_alias
from components.registry_names import (
    CHAMPION,
    STATE_COMPLETE,
    TAG_BUNDLE_URI,
    TAG_GATE,
    TAG_REJECTED,
    TAG_ROLLOUT,
    TAG_ROLLOUT_VERDICT,
    TAG_SERVING_IMAGE_TAG,
    TAG_STATE,
)
from components.rollout.kube import (
    TAG_ROUTING_ANNOTATION,
    InferenceServices,
    KubeError,
    require_traffic_splitting,
)
from components.rollout.plan import RolloutPlan
from components.rollout.state import CANARY, PROMOTED, ROLLED_BACK, RolloutState
from components.rollout.verdict import HOLD, PROMOTE, ROLLBACK, SKIPPED, Verdict

log = logging.getLogger(__name__)

VIA = "rollout"
MAX_TAG_CHARS = 5000  # a model-version tag value in MLflow's SQL schema (VARCHAR(5000))
DECISIONS = (PROMOTE, HOLD, ROLLBACK)  # what a canary verdict may say ("skipped" is pre-flight only)


class RolloutError(ChurnError, RuntimeError):
    """The rollout cannot go on (or start) as asked; the message says why and what to do."""


# analysis(stable_version, canary_version, window_s) -> the canary Verdict of that window
Analysis = Callable[[str, str, float], Verdict]


def prometheus_analysis(url: str, config=None, *, namespace: str, model_name: str = "churn") -> Analysis:
    """The Prometheus analysis (:func:`components.rollout.analysis.analyze`) as the driver calls it:
    over the time the current share has been in effect, on this namespace's servers only."""
    from dataclasses import replace

    from components.rollout.analysis import AnalysisConfig, VersionRef, analyze
    from components.rollout.prometheus import PrometheusClient

    client, config = PrometheusClient(url), config or AnalysisConfig()

    def run(stable: str, canary: str, window_s: float) -> Verdict:
        matchers = {"namespace": namespace}
        window = replace(config, window=f"{max(60, int(window_s))}s")  # >= a few scrapes per window
        return analyze(
            client, VersionRef(stable, model_name, matchers), VersionRef(canary, model_name, matchers), window
        )

    return run


@dataclass
class Driver:
    """Drives rollouts of ``settings.registered_model`` versions onto ``isvc``."""

    settings: Settings
    isvc: InferenceServices
    analysis: Analysis
    say: Callable[[str], None] = log.info
    on_verdict: Callable[[Verdict], None] = field(default=lambda verdict: None)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time
    poll_s: float = 5.0
    break_lock: bool = False
    deadline: float | None = None  # on ``clock``: past it the canary is rolled back (the deploy step)
    # Step 0: preflight(version) -> the pre-flight replay's Verdict (components/rollout/preflight.py),
    # before any live traffic; None: no payload log to replay (said so at start).
    preflight: Callable[[str], Verdict] | None = None

    # ---- entry points -----------------------------------------------------------------------
    def start(self, version: str, plan: RolloutPlan) -> RolloutState:
        """Roll ``version`` out with ``plan`` and drive it to promoted or rolled back.

        ``start`` of the version already in progress continues it (as ``resume``); of another
        version while one is in progress it refuses, naming that one.
        """
        version = str(version)
        with self._session(f"rollout start v{version}") as registry:
            obj = self._checked_object()
            current = RolloutState.from_annotations(obj["metadata"].get("annotations"))
            if current is not None and current.in_progress:
                if (current.registered_model, current.version) != (registry.name, version):
                    raise RolloutError(
                        f"{self.isvc.ref}: a rollout of {current.registered_model} v{current.version} is "
                        f"in progress (step {current.step}, started by {current.driver}); `churn rollout "
                        "resume`, `promote` or `rollback` it first"
                    )
                self.say(f"v{version}: rollout already in progress at step {current.step}; resuming it")
                return self._drive(registry, current)
            state = self._begin(registry, version, plan)
            return self._drive(registry, state)

    def resume(self) -> RolloutState:
        """Continue the rollout the InferenceService records, from where it was."""
        with self._session("rollout resume") as registry:
            state = self._recorded(registry)
            if not state.in_progress:
                self._finish_bookkeeping(registry, state)
                self.say(f"v{state.version}: rollout already {state.phase} ({state.reason})")
                return state
            return self._drive(registry, state)

    def promote(self, reason: str) -> RolloutState:
        """Promote the version in progress now, whatever step it is at (audited with ``reason``)."""
        _require_reason(reason)
        with self._session("rollout promote") as registry:
            state = self._recorded(registry, require_progress=True)
            return self._promote(registry, state, f"manual promote: {reason}")

    def rollback(self, reason: str) -> RolloutState:
        """Send all traffic back to the stable revision and tag the version rejected with ``reason``."""
        _require_reason(reason)
        with self._session("rollout rollback") as registry:
            state = self._recorded(registry, require_progress=True)
            return self._rollback(registry, state, [f"manual rollback: {reason}"])

    def analyze(self) -> Verdict:
        """One verdict on the rollout in progress, stored on the version; nothing is changed."""
        with connect(self.settings, "rollout analyze") as registry:
            state = self._recorded(registry, require_progress=True)
            return self._judge(registry, state)

    def status(self) -> dict:
        """What the InferenceService and the registry say about the rollout (no lock, no change)."""
        obj = self.isvc.require()
        predictor = obj.get("spec", {}).get("predictor", {})
        model = predictor.get("model", {})
        state = RolloutState.from_annotations(obj["metadata"].get("annotations"))
        out = {
            "inferenceservice": f"{self.isvc.namespace}/{self.isvc.name}",
            "mode": _mode_or_reason(obj, self.isvc.ref),
            "storage_uri": model.get("storageUri"),
            "runtime_version": model.get("runtimeVersion"),
            "canary_traffic_percent": predictor.get("canaryTrafficPercent"),
            "traffic": ((obj.get("status") or {}).get("components") or {})
            .get("predictor", {})
            .get("traffic"),
            "rollout": None if state is None else asdict(state),
        }
        if state is not None:
            with connect(self.settings, "rollout status") as registry:
                tags = registry.get_version(state.version).tags
                out["verdict"] = (
                    json.loads(tags[TAG_ROLLOUT_VERDICT]) if TAG_ROLLOUT_VERDICT in tags else None
                )
                out["rejected"] = tags.get(TAG_REJECTED)
                out["champion"] = registry.alias_version(CHAMPION)
        return out

    # ---- the steps ----------------------------------------------------------------------------
    @contextmanager
    def _session(self, step: str) -> Iterator[Registry]:
        """The registry, under the rollout lock: one driver per registered model at a time."""
        owner = f"{step} by {actor()} on {self.isvc.namespace}/{self.isvc.name}"
        with connect(self.settings, step) as registry, promotion_lock(
            registry, owner=owner, kind=VIA, timeout_s=0, break_lock=self.break_lock
        ):  # fmt: skip
            self._owner = owner
            yield registry

    def _checked_object(self) -> dict:
        obj = self.isvc.require()
        require_traffic_splitting(obj, self.isvc.ref)
        return obj

    def _recorded(self, registry: Registry, *, require_progress: bool = False) -> RolloutState:
        obj = self._checked_object()
        state = RolloutState.from_annotations(obj["metadata"].get("annotations"))
        if state is None:
            raise RolloutError(f"{self.isvc.ref}: no rollout recorded; `churn rollout start` one")
        if state.registered_model != registry.name:
            raise RolloutError(
                f"{self.isvc.ref}: the rollout recorded is of {state.registered_model}, not {registry.name} "
                "(--model)"
            )
        if require_progress and not state.in_progress:
            raise RolloutError(f"{self.isvc.ref}: the rollout of v{state.version} is already {state.phase}")
        return state

    def _begin(self, registry: Registry, version: str, plan: RolloutPlan) -> RolloutState:
        mv = registry.get_version(version)
        tags = mv.tags
        if tags.get(TAG_STATE) != STATE_COMPLETE or not tags.get(TAG_BUNDLE_URI):
            raise RolloutError(f"{registry.name} v{version}: registration incomplete (no published bundle)")
        if tags.get(TAG_GATE) != "passed":
            raise RolloutError(
                f"{registry.name} v{version}: quality gate {tags.get(TAG_GATE)}; not rolled out"
            )
        if tags.get(TAG_REJECTED):
            raise RolloutError(
                f"{registry.name} v{version}: rejected by an earlier rollout ({tags[TAG_REJECTED]})"
            )
        image_tag = tags.get(TAG_SERVING_IMAGE_TAG)
        if not image_tag:
            raise RolloutError(
                f"{registry.name} v{version}: no {TAG_SERVING_IMAGE_TAG} tag, so no serving image is known "
                "to have been pushed with it (the pipeline's deploy step records the tag of the CD-built "
                "image it runs in)"
            )
        stable = registry.alias_version(CHAMPION)
        if stable == version:
            raise RolloutError(f"{registry.name} v{version} is already the champion; nothing to roll out")
        if stable is not None:
            self._preflight(registry, version)
        if stable is None:
            plan = RolloutPlan(steps=(100,), bake_s=0, ready_timeout_s=plan.ready_timeout_s)
            self.say(f"v{version}: no champion yet, so nothing to compare with: first deployment at 100 %")
        now = self.clock()
        state = RolloutState(
            registered_model=registry.name, version=version, stable_version=stable, phase=CANARY,
            step=0, plan=plan.to_text(), started_at=now, step_started_at=now, driver=self._owner,
        )  # fmt: skip
        spec = {"storageUri": tags[TAG_BUNDLE_URI], "runtimeVersion": image_tag}
        share = plan.share(0)
        self.isvc.patch(
            {
                "metadata": {"annotations": {TAG_ROUTING_ANNOTATION: "true", **state.annotations()}},
                "spec": {
                    "predictor": {"canaryTrafficPercent": share if share < 100 else None, "model": spec}
                },
            }
        )
        self._mirror(registry, state)
        self.say(
            f"v{version}: started ({tags[TAG_BUNDLE_URI]}, image tag {image_tag}) at {share} % "
            f"of traffic; stable v{stable}"
            if stable
            else f"v{version}: deployed at 100 %"
        )
        return state

    def _preflight(self, registry: Registry, version: str) -> None:
        """Step 0: the challenger on recent production rows, before it sees a request."""
        if self.preflight is None:
            self.say(f"v{version}: no pre-flight replay (no payload log given); straight to the canary")
            return
        verdict = self.preflight(version)
        registry.client.set_model_version_tag(
            registry.name, version, TAG_ROLLOUT_VERDICT, _fit({"step": "preflight", **verdict.to_dict()})
        )
        self.on_verdict(verdict)
        if verdict.decision == ROLLBACK:
            value = {"reasons": ["pre-flight replay", *verdict.reasons], "at": self.clock(), "by": actor()}
            registry.client.set_model_version_tag(registry.name, version, TAG_REJECTED, _fit(value))
            raise RolloutError(
                f"{registry.name} v{version}: rejected by the pre-flight replay before any traffic: "
                + "; ".join(verdict.reasons)
            )
        if verdict.decision == SKIPPED:
            self.say(f"v{version}: pre-flight {'; '.join(verdict.reasons)}: not judged; the canary decides")

    def _drive(self, registry: Registry, state: RolloutState) -> RolloutState:
        plan = RolloutPlan.from_text(state.plan)
        while True:
            if state.step >= len(plan.canary_steps):  # the 100 % step: promotion
                return self._promote(registry, state, "every step of the plan passed")
            if self.deadline is not None and self.clock() >= self.deadline:
                return self._rollback(registry, state, ["the rollout did not finish within its time limit"])
            try:
                self.isvc.wait_ready(plan.ready_timeout_s, sleep=self.sleep)
            except KubeError as exc:
                return self._rollback(registry, state, [f"canary revision: {exc}"])
            waited = self.clock() - state.step_started_at
            if waited < plan.bake_s:
                self.say(
                    f"v{state.version}: {plan.share(state.step)} % of traffic, baking "
                    f"{plan.bake_s - waited:.0f} s more"
                )
                self.sleep(self._until_deadline(plan.bake_s - waited))
                continue  # the deadline may have passed meanwhile
            verdict = self._judge(registry, state)
            if verdict.decision == ROLLBACK:
                return self._rollback(registry, state, list(verdict.reasons))
            if verdict.decision == HOLD:
                held = self.clock() - state.step_started_at - plan.bake_s
                if held > plan.hold_timeout_s:
                    return self._rollback(
                        registry, state,
                        [f"held for {held:.0f} s > {plan.hold_timeout_s:.0f} s", *verdict.reasons],
                    )  # fmt: skip
                self.sleep(self._until_deadline(self.poll_s))
                continue
            if plan.is_last_canary(state.step):
                return self._promote(registry, state, "every step of the plan passed")
            state = state.at_step(state.step + 1, now=self.clock())
            self._patch_state(state, canary=plan.share(state.step))
            self._mirror(registry, state)
            self.say(f"v{state.version}: step {state.step}: {plan.share(state.step)} % of traffic")

    def _until_deadline(self, seconds: float) -> float:
        if self.deadline is None:
            return seconds
        return max(0.0, min(seconds, self.deadline - self.clock()))

    def _judge(self, registry: Registry, state: RolloutState) -> Verdict:
        if state.stable_version is None:
            raise RolloutError(f"v{state.version}: a first deployment has no stable version to compare with")
        window = max(1.0, self.clock() - state.step_started_at)
        verdict = self.analysis(state.stable_version, state.version, window)
        if verdict.decision not in DECISIONS:
            raise RolloutError(f"analysis returned decision {verdict.decision!r}, not one of {DECISIONS}")
        record = {"step": state.step, "at": self.clock(), **verdict.to_dict()}
        registry.client.set_model_version_tag(registry.name, state.version, TAG_ROLLOUT_VERDICT, _fit(record))
        self.on_verdict(verdict)
        return verdict

    def _promote(self, registry: Registry, state: RolloutState, reason: str) -> RolloutState:
        plan = RolloutPlan.from_text(state.plan)
        last = len(plan.steps) - 1
        if state.step != last:  # traffic first, recorded with it: resume goes straight on from here
            state = state.at_step(last, now=self.clock())
            self._patch_state(state, canary=None)
            self._mirror(registry, state)
        if state.stable_version is None:
            try:
                self.isvc.wait_ready(plan.ready_timeout_s, sleep=self.sleep)
            except KubeError as exc:
                raise RolloutError(
                    f"v{state.version}: first deployment not ready ({exc}); nothing served before it, so "
                    "there is nothing to roll back to: fix it and `churn rollout resume`"
                ) from exc
        move = move_alias(
            registry, CHAMPION, state.version, reason=reason, via=VIA, expected=state.stable_version,
            break_lock=self.break_lock,
        )  # fmt: skip
        if move.conflict:
            raise RolloutError(
                f"{registry.name}: champion moved to v{move.from_version} during the rollout (expected "
                f"v{state.stable_version}); traffic is all on v{state.version} but the alias was left "
                "alone: decide, then `churn registry promote` or `churn rollout rollback`"
            )
        state = state.ended(PROMOTED, reason)
        self._patch_state(state)
        self._mirror(registry, state)
        self.say(f"v{state.version}: promoted to champion ({reason})")
        return state

    def _rollback(self, registry: Registry, state: RolloutState, reasons: list[str]) -> RolloutState:
        if state.stable_version is None:
            raise RolloutError(
                f"v{state.version}: first deployment, no previous revision to send traffic back to "
                f"({'; '.join(reasons)})"
            )
        state = state.ended(ROLLED_BACK, "; ".join(reasons) or "rolled back")
        self._patch_state(state, canary=0)
        self._finish_bookkeeping(registry, state, reasons)
        self.say(
            f"v{state.version}: rolled back; v{state.stable_version} serves all traffic ({state.reason})"
        )
        return state

    def _finish_bookkeeping(self, registry: Registry, state: RolloutState, reasons: list[str] | None = None):
        """What follows an ended rollout's last patch (run again by ``resume`` after an interruption)."""
        if state.phase == ROLLED_BACK:
            tags = registry.get_version(state.version).tags
            if reasons is not None or not tags.get(TAG_REJECTED):
                value = {"reasons": reasons or [state.reason], "at": self.clock(), "by": actor()}
                registry.client.set_model_version_tag(registry.name, state.version, TAG_REJECTED, _fit(value))
        self._mirror(registry, state)

    def _patch_state(self, state: RolloutState, **spec) -> None:
        """One merge patch: the state annotations and (``canary=...``) the traffic share they describe."""
        body: dict = {"metadata": {"annotations": state.annotations()}}
        if "canary" in spec:
            body["spec"] = {"predictor": {"canaryTrafficPercent": spec["canary"]}}
        self.isvc.patch(body)

    def _mirror(self, registry: Registry, state: RolloutState) -> None:
        registry.client.set_model_version_tag(
            registry.name,
            state.version,
            TAG_ROLLOUT,
            _fit(json.loads(state.to_tag(self.isvc.namespace, self.isvc.name))),
        )


def preflight_replay(settings: Settings, payload_uri: str, config=None) -> Callable[[str], Verdict]:
    """The pre-flight replay (:func:`components.rollout.preflight.replay_version`) as the driver's step 0."""
    import tempfile
    from pathlib import Path

    from components.rollout.preflight import replay_version

    def run(version: str) -> Verdict:
        with tempfile.TemporaryDirectory(prefix="churn-preflight-") as work:
            return replay_version(settings, version, payload_uri, Path(work), config)

    return run


def record_image_tag(settings: Settings, version: str, image_tag: str) -> None:
    """Record on ``version`` the serving image tag CD pushed with the image that registered it."""
    with connect(settings, f"record image tag of v{version}") as registry:
        current = registry.get_version(version).tags.get(TAG_SERVING_IMAGE_TAG)
        if current and current != image_tag:
            raise RolloutError(
                f"{registry.name} v{version}: {TAG_SERVING_IMAGE_TAG} is {current!r} already, "
                f"not {image_tag!r}"
            )
        registry.client.set_model_version_tag(registry.name, str(version), TAG_SERVING_IMAGE_TAG, image_tag)


def _fit(record: dict) -> str:
    """``record`` as JSON that fits one MLflow tag: check rows dropped first, then reasons cut."""
    text = json.dumps(record, sort_keys=True, default=str)
    if len(text) <= MAX_TAG_CHARS:
        return text
    slim = {k: v for k, v in record.items() if k != "checks"}
    slim["checks"] = "omitted: too long for one MLflow tag"
    text = json.dumps(slim, sort_keys=True, default=str)
    if len(text) <= MAX_TAG_CHARS:
        return text
    return json.dumps({"decision": record.get("decision"), "truncated": text[: MAX_TAG_CHARS // 2]})


def _require_reason(reason: str) -> None:
    if not reason or not reason.strip():
        raise RegistryError("--reason: required (it goes into the audit trail)")


def _mode_or_reason(obj: dict, ref: str) -> str:
    try:
        return require_traffic_splitting(obj, ref)
    except KubeError as exc:
        return f"unsupported: {exc}"
