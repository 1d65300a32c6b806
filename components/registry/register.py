"""The register step: track the run, register a version, publish its bundle, move aliases if earned.

Order of work, so that a failure at any point leaves nothing half-done:

0. pick the data lineage's registered model and model-store root from the source URI
   (:mod:`components.registry.lineage`: the synthetic demo never meets a real champion);
1. preflight: MLflow and the model store answer (bounded retries, endpoint named on failure);
2. re-score the candidate bundle and the current champion's published bundle on the *same*
   test rows, those neither model trained on, with ONNX Runtime, and apply the gate
   (:mod:`components.registry.scoring`, :mod:`components.gate`);
3. log the MLflow run (with the hashed ids of the train and valid splits,
   :mod:`components.registry.trained_ids`); stage the bundle in the model store;
4. create the model version tagged ``registration_state=pending``;
5. publish the bundle to ``<model_store_uri>/<version>/`` (atomic, hash-verified), then tag
   ``bundle_uri`` / ``bundle_sha256`` and ``registration_state=complete``;
6. only then move aliases (:func:`~components.registry.promotion.move_alias`: under the
   promotion lock, compare-and-set on ``champion``).

A failure in 3-5 marks the run FAILED, deletes the new version and its published bundle (best
effort) and raises naming the endpoint; no alias has moved. A version left ``pending`` (MLflow
itself died before the undo) is never aliased and is shown as incomplete by ``churn registry list``.

Concurrency (two runs finishing at once): the gate compares against the champion seen at the
start, and ``champion`` moves only if it still points there. If another run moved it meanwhile,
this run re-scores the *new* champion on its own test rows and re-gates: it moves ``champion``
only if it also beats that one, otherwise it leaves the alias and says so in its summary and
version tags. No alias is ever moved on the strength of a comparison with a model that is no
longer the champion.
"""

from __future__ import annotations

import json
import logging
import tempfile
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path

from components.artifacts import Lineage, RunArtifacts
from components.bundle import verify
from components.config import Settings
from components.gate import GATE_METRICS, GateConfig, GateResult, load_labelled
from components.model_store import ModelStore, PublishedBundle, StagedBundle
from components.registry import tracking
from components.registry.cleanup import HOLDER_PREFIX, TAG_MODEL, TAG_STAGING, close_abandoned
from components.registry.client import Registry, RegistryError, already_exists, connect, endpoint
from components.registry.holder import Holder
from components.registry.lineage import settings_for_source
from components.registry.promotion import move_alias
from components.registry.scoring import Candidate, bundle_scores, gate_against
from components.registry.trained_ids import log_trained_ids, split_ids
from components.registry_names import (
    CHALLENGER,
    CHAMPION,
    STATE_COMPLETE,
    STATE_PENDING,
    TAG_BUNDLE_SHA,
    TAG_BUNDLE_URI,
    TAG_CALIBRATION,
    TAG_COMPARED,
    TAG_CONTENT_SHA,
    TAG_GATE,
    TAG_GATE_REASONS,
    TAG_PROMOTION,
    TAG_STATE,
    data_lineage,
)

log = logging.getLogger(__name__)

VIA = "pipeline register"
# The artifacts the register step reads (the rest of a run's record belongs to other steps).
_INPUTS = ("bundle", "model", "evaluation", "report", "profile", "train", "valid", "test")


def register_model(
    artifacts: RunArtifacts,
    lineage: Lineage,
    *,
    params: Mapping,
    gate: GateConfig,
    promote: bool,
    settings: Settings,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Track the run, register a model version, publish its bundle and move aliases if earned.

    Returns a JSON-able summary (``docs/registry.md``). ``promote`` moves ``champion`` as well as
    ``challenger`` when the gate passes (local runs; on a cluster the rollout promotes).
    ``progress`` receives one line per stage (default: the log). ``settings`` are the user's:
    the version goes to the registered model of ``lineage.source_uri``'s data lineage.
    """
    say = progress or log.info
    settings = settings_for_source(settings, lineage.source_uri)
    if not isinstance(gate, GateConfig):
        raise RegistryError(f"gate: expected GateConfig, got {type(gate).__name__}")
    if not lineage.data_hash:
        raise RegistryError("data_hash: empty")
    for field in _INPUTS:
        path = getattr(artifacts, field)
        if not path.exists():
            raise RegistryError(f"artifacts.{field}: {path} does not exist")
    metrics = tracking.read_metrics(artifacts.evaluation)
    verify(artifacts.bundle)  # fail on a bad bundle before anything is written
    rows = load_labelled(artifacts.test)
    trained = split_ids(artifacts.train, artifacts.valid)

    say(f"registry: connecting to {endpoint(settings)}; model store {settings.model_store_uri}")
    with (
        connect(settings, "register") as registry,
        tempfile.TemporaryDirectory(prefix="churn-register-") as tmp,
    ):
        work = Path(tmp)
        store = ModelStore(settings.model_store_uri, settings)
        store.preflight()
        with registry.step("closing abandoned registrations"):
            closed = close_abandoned(registry)  # the next run cleans up after a killed one
        for item in closed["versions"] + closed["runs"]:
            say(f"closed an abandoned registration: {item}")
        try:
            scores = bundle_scores(artifacts.bundle, rows)
        except Exception as exc:  # a graph that does not run on the schema's columns
            raise RegistryError(
                f"artifacts.bundle {artifacts.bundle}: cannot score the test split: {exc}"
            ) from exc
        candidate = Candidate(artifacts.bundle, rows, trained, data_lineage(lineage.source_uri), scores)
        with registry.step("champion lookup"):
            verdict = gate_against(registry, registry.alias_version(CHAMPION), candidate, gate, work, say)
        say(f"gate {verdict.verdict}: " + "; ".join(verdict.checks))

        with registry.step("run setup"):
            _ensure_registered_model(registry)
            tags = tracking.lineage_tags(lineage)
            run_tags = {
                **tags, "mlflow.source.git.commit": tags["git_commit"], TAG_GATE: verdict.verdict,
                TAG_MODEL: registry.name, **Holder.current().tags(HOLDER_PREFIX),
            }  # fmt: skip
            experiment_id, run_id = tracking.start_run(registry, run_tags, f"churn-{lineage.pipeline_run_id}")
        version, published = _register_version(
            registry, store, artifacts, metrics, params, verdict, tags, experiment_id, run_id, candidate,
            work, say,
        )  # fmt: skip
        say(f"v{version} complete; moving aliases")
        try:
            moves = _move_aliases(registry, version, run_id, verdict, candidate, gate, promote, work, say)
        except BaseException as exc:
            # The version is complete and stays (its bundle is published and verified); only
            # the alias moves failed. Say so on the version and the run, best effort.
            try:
                registry.client.set_model_version_tag(
                    registry.name, version, TAG_PROMOTION, f"alias update failed: {exc}"
                )
                registry.client.set_terminated(run_id, "FAILED")
            except Exception as tag_exc:
                log.warning("could not record the failed alias update: %s", tag_exc)
            raise
        with registry.step(f"closing run {run_id}"):
            registry.client.set_terminated(run_id, "FINISHED")
        return _summary(settings, version, run_id, verdict, moves, published, candidate.lineage)


def _ensure_registered_model(registry: Registry) -> None:
    from mlflow.exceptions import MlflowException

    try:
        registry.client.create_registered_model(
            registry.name, description="Customer churn classifier (ONNX bundles)."
        )
    except MlflowException as exc:
        if not already_exists(exc):
            raise


def _register_version(
    registry: Registry,
    store: ModelStore,
    artifacts: RunArtifacts,
    metrics: dict[str, float],
    params: Mapping,
    verdict: GateResult,
    lineage_tags: dict[str, str],
    experiment_id: str,
    run_id: str,
    candidate: Candidate,
    work: Path,
    say: Callable[[str], None],
) -> tuple[str, PublishedBundle]:
    """Steps 3-5 of the module docstring as one transaction: all done, or undone and raised."""
    version = staged = None
    try:
        say(f"logging MLflow run {run_id} (params, metrics, artifacts, sklearn model)")
        with registry.step(f"logging run {run_id}"):
            logged = tracking.log_run(
                registry, experiment_id=experiment_id, run_id=run_id, params=params, metrics=metrics,
                gate_result=verdict, artifacts=artifacts, X=candidate.rows.X,
            )  # fmt: skip
            log_trained_ids(registry, run_id, candidate.trained, work)
        say(f"staging bundle in {registry.settings.model_store_uri}")
        token = uuid.uuid4().hex
        with registry.step("staging bundle"):
            registry.client.set_tag(run_id, TAG_STAGING, token)  # recorded first: gc finds it after a kill
        staged = store.stage(artifacts.bundle, token)
        say("creating the model version")
        tags = {
            **lineage_tags,
            TAG_STATE: STATE_PENDING,
            TAG_CONTENT_SHA: staged.metadata.content_sha256,
            TAG_CALIBRATION: staged.metadata.calibration_method,
            TAG_GATE: verdict.verdict,
            TAG_GATE_REASONS: json.dumps(list(verdict.reasons)),
            TAG_COMPARED: verdict.champion_version or "none",
            **{m: f"{metrics[m]:.6f}" for m in tracking.KEY_METRICS if m in metrics},
        }
        with registry.step("create model version"), registry.global_tracking_uri():
            mv = registry.client.create_model_version(
                registry.name,
                source=f"models:/{logged.model_id}",
                run_id=run_id,
                tags=tags,
                model_id=logged.model_id,
                description=f"gate {verdict.verdict}; data {lineage_tags['data_hash']}",
            )
        version = str(mv.version)
        say(f"registered {registry.name} v{version}; publishing bundle")
        published = store.commit(staged, staged.metadata.registered(version, registry.name, run_id))
        with registry.step(f"tagging v{version}"):
            say(f"published v{version} at {published.uri}; marking it complete")
            registry.client.set_model_version_tag(registry.name, version, TAG_BUNDLE_URI, published.uri)
            registry.client.set_model_version_tag(registry.name, version, TAG_BUNDLE_SHA, published.sha256)
            registry.client.set_model_version_tag(registry.name, version, TAG_STATE, STATE_COMPLETE)
            registry.client.set_tag(run_id, "registered_version", version)
    except BaseException as exc:
        _undo(registry, store, run_id, version, staged, exc)
        raise
    return version, published


def _undo(
    registry: Registry,
    store: ModelStore,
    run_id: str,
    version: str | None,
    staged: StagedBundle | None,
    exc: BaseException,
) -> None:
    """Best-effort compensation: no version, no published bundle, run marked FAILED."""
    log.error("registration failed (%s); undoing", exc)
    steps = []
    if version is not None:
        steps.append(("delete version", lambda: registry.client.delete_model_version(registry.name, version)))
        # a fresh number: whatever is at its path (even half a copy) is ours
        steps.append(("remove published bundle", lambda: store.remove_version(version)))
    if staged is not None:
        steps.append(("discard staging", lambda: store.discard(staged)))
    steps.append(("mark run failed", lambda: registry.client.set_terminated(run_id, "FAILED")))
    for what, step in steps:
        try:
            step()
        except Exception as undo_exc:  # the original error matters more; log and go on
            log.warning("undo %s: %s", what, undo_exc)


def _move_aliases(
    registry: Registry,
    version: str,
    run_id: str,
    verdict: GateResult,
    candidate: Candidate,
    gate: GateConfig,
    promote: bool,
    work: Path,
    say: Callable[[str], None],
) -> dict:
    """``challenger``, then (with ``promote``) ``champion`` by compare-and-set (module docstring)."""
    moves: dict = {"challenger": None, "champion": None, "note": None, "regated_against": None}
    if not verdict.passed:
        moves["note"] = f"gate {verdict.verdict}: no alias moved"
        return moves
    with registry.step("alias update"):
        challenger = move_alias(
            registry, CHALLENGER, version, reason="quality gate passed", via=VIA, run_id=run_id
        )
        if challenger.moved:
            moves["challenger"] = {"from": challenger.from_version, "to": version}
        if not promote:
            moves["note"] = "promotion left to the rollout (promote=False)"
            return moves
        expected = verdict.champion_version
        while True:  # each pass means another run promoted meanwhile: judge us against that one
            reason = (
                f"gate passed vs champion v{expected} on test rows neither trained on"
                if expected
                else "gate passed (first champion)"
            )
            champion = move_alias(
                registry, CHAMPION, version, reason=reason, via=VIA, expected=expected, run_id=run_id
            )
            if not champion.conflict:
                break
            expected = champion.from_version
            say(f"champion moved to v{expected} since the gate ran; re-gating against it")
            regate = gate_against(registry, expected, candidate, gate, work, say)
            moves["regated_against"] = {"version": expected, "gate": regate.to_dict()}
            if not regate.passed:
                moves["note"] = f"champion moved to v{expected} meanwhile and re-gate failed: " + "; ".join(
                    regate.reasons
                )
                registry.client.set_model_version_tag(registry.name, version, TAG_PROMOTION, moves["note"])
                return moves
        moves["champion"] = {"from": champion.from_version, "to": version}
    return moves


def _summary(
    settings: Settings,
    version: str,
    run_id: str,
    verdict: GateResult,
    moves: dict,
    published: PublishedBundle,
    verdict_lineage: str,
) -> dict:
    champion_before = verdict.champion_version
    compared = None
    if champion_before and verdict.champion is not None:
        cand, champ, rows = verdict.paired_candidate, verdict.champion, verdict.comparison
        compared = {
            "champion_version": champion_before,
            "rows": rows["rows"],
            "test_rows": rows["test_rows"],
            "excluded": rows["excluded"],
            "candidate": {k: cand[k] for k in GATE_METRICS},
            "champion": {k: champ[k] for k in GATE_METRICS},
            "delta": {k: cand[k] - champ[k] for k in GATE_METRICS},
        }
        message = (
            f"Compared against champion v{champion_before} re-scored on the {rows['rows']} of "
            f"{rows['test_rows']} test rows neither model trained on "
            f"({rows['excluded']['champion_trained']} were in the champion's training data, "
            f"{rows['excluded']['candidate_trained']} in this model's): ROC AUC {cand['roc_auc']:.4f} "
            f"(new v{version}) vs {champ['roc_auc']:.4f}, "
            f"PR AUC {cand['pr_auc']:.4f} vs {champ['pr_auc']:.4f}."
        )
    elif champion_before and verdict.refused:
        message = f"Champion v{champion_before} was not compared (refused)."
    elif champion_before:
        message = f"Champion v{champion_before} could not be re-scored, so no comparison was possible."
    else:
        message = f"No champion yet: v{version} checked against the absolute floors only."
    champion_after = (moves["champion"] or {}).get("to") or champion_before
    if moves["regated_against"]:
        champion_after = (moves["champion"] or {}).get("to") or moves["regated_against"]["version"]
    message += (
        f" Gate {verdict.verdict}" + (": " + "; ".join(verdict.reasons) if verdict.reasons else "") + "."
    )
    if moves["champion"]:
        before = moves["champion"]["from"]
        message += f" Champion: {f'v{before}' if before else 'none'} -> v{version}."
    elif moves["note"]:
        message += f" {moves['note'][0].upper()}{moves['note'][1:]}."
    return {
        "registered_model": settings.registered_model,
        "data_lineage": verdict_lineage,
        "version": version,
        "run_id": run_id,
        "tracking_uri": settings.mlflow_tracking_uri,
        "gate": verdict.to_dict(),
        "compared_against_champion": compared,
        "champion_before": champion_before,
        "champion_after": champion_after,
        "aliases_moved": {k: moves[k] for k in ("challenger", "champion") if moves[k]},
        "regated_against": moves["regated_against"],
        "note": moves["note"],
        "bundle_uri": published.uri,
        "bundle_sha256": published.sha256,
        "message": message,
    }
