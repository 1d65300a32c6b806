"""The rollout driver against the recording fake Kubernetes API (no cluster can run here: the one
fake, tests/support/kube_api.py, which validates every patch and stored object against the kserve
SDK's V1beta1InferenceService with unknown fields rejected) and a real MLflow server.

The analysis is scripted here (a list of decisions), because what is under test is what the
driver does with each decision; the Prometheus analysis has its own tests against a real
Prometheus. Bake and poll times are zero and sleeping is recorded, not done.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from components.registry import RegistryBusyError, connect
from components.registry.audit import history
from components.registry.lock import promotion_lock
from components.registry_names import CHAMPION, TAG_REJECTED, TAG_ROLLOUT, TAG_ROLLOUT_VERDICT
from components.rollout import state as st
from components.rollout.driver import Driver, RolloutError
from components.rollout.kube import InferenceServices, KubeError, ModeError, api_client
from components.rollout.plan import RolloutPlan
from components.rollout.verdict import CANARY, PREFLIGHT, Check, Verdict, judged, skipped
from tests.components.rollout.conftest import NAME, NAMESPACE, bundle_uri, image_tag

PLAN = RolloutPlan(steps=(10, 50, 100), bake_s=0, ready_timeout_s=0, hold_timeout_s=0)


@dataclass
class Scripted:
    """An analysis that answers the given decisions in order (then promote), recording the calls.

    Its verdicts are real ones (components/rollout/verdict.py), one check row each.
    """

    decisions: list[str] = field(default_factory=list)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, stable: str, canary: str, window_s: float) -> Verdict:
        self.calls.append((stable, canary))
        decision = self.decisions.pop(0) if self.decisions else "promote"
        passed = {"promote": True, "rollback": False, "hold": None}[decision]
        row = Check("scripted", 0.0, 1.0, 1.0, "<= 0.5", passed, detail=f"scripted {decision}")
        return judged(CANARY, stable, canary, [row], "scripted")


def driver(settings, kube, analysis=None, **options) -> Driver:
    isvc = InferenceServices(api_client(kube.url, retries=0), NAMESPACE, NAME)
    return Driver(settings, isvc, analysis or Scripted(), sleep=lambda s: None, poll_s=0, **options)


def champion(settings) -> str | None:
    with connect(settings, "read champion") as registry:
        return registry.alias_version(CHAMPION)


def tags(settings, version: str) -> dict:
    with connect(settings, "read tags") as registry:
        return dict(registry.get_version(version).tags)


def make_champion(settings, version: str) -> None:
    from components.registry import move_alias

    with connect(settings, "setup") as registry:
        move_alias(registry, CHAMPION, version, reason="setup", via="test")


def spec_steps(kube) -> list[tuple]:
    """Each patch as (canaryTrafficPercent or '-' when untouched, phase, step) in order."""
    out = []
    for body in kube.patches():
        predictor = body.get("spec", {}).get("predictor", {})
        share = predictor.get("canaryTrafficPercent", "-") if "canaryTrafficPercent" in predictor else "-"
        annotations = body["metadata"]["annotations"]
        out.append((share, annotations[st.A_PHASE], int(annotations[st.A_STEP])))
    return out


# The exact patch sequence of a rollout that passes every step (default plan 10 -> 50 -> 100).
PROMOTED_SEQUENCE = [
    (10, "canary", 0),  # start: new storageUri + runtimeVersion, 10 %
    (50, "canary", 1),  # step 0 passed
    (None, "canary", 2),  # step 1 passed: canaryTrafficPercent removed = all traffic to the canary
    ("-", "promoted", 2),  # champion moved, phase recorded
]


def test_a_passing_rollout_patches_exactly_start_each_step_and_promote(settings, versions, kube):
    v1, v2 = versions(2)
    make_champion(settings, v1)
    analysis = Scripted()
    final = driver(settings, kube, analysis).start(v2, PLAN)

    assert final.phase == st.PROMOTED and champion(settings) == v2
    assert spec_steps(kube) == PROMOTED_SEQUENCE
    first = kube.patches()[0]
    assert first["spec"]["predictor"]["model"] == {
        "storageUri": bundle_uri(v2),
        "runtimeVersion": image_tag(v2),
    }
    assert first["metadata"]["annotations"]["serving.kserve.io/enable-tag-routing"] == "true"
    assert all(r.content_type == "application/merge-patch+json" for r in kube.requests if r.method == "PATCH")
    assert analysis.calls == [(v1, v2), (v1, v2)]  # judged at 10 % and at 50 %
    assert kube.rejected == []
    obj = kube.get(NAMESPACE, NAME)
    assert "canaryTrafficPercent" not in obj["spec"]["predictor"]
    assert [t["percent"] for t in obj["status"]["components"]["predictor"]["traffic"]] == [100]
    mirrored = json.loads(tags(settings, v2)[TAG_ROLLOUT])
    assert (mirrored["phase"], mirrored["inferenceservice"]) == ("promoted", "churn/churn")
    stored = json.loads(tags(settings, v2)[TAG_ROLLOUT_VERDICT])
    assert (stored["decision"], stored["step"], stored["checks"][0]["check"]) == ("promote", 1, "scripted")
    with connect(settings, "audit") as registry:
        last = history(registry)[-1]
    assert (last.alias, last.from_version, last.to_version, last.via) == (CHAMPION, v1, v2, "rollout")


def test_a_canary_judged_bad_goes_to_zero_and_is_tagged_rejected(settings, versions, kube):
    v1, v2 = versions(2)
    make_champion(settings, v1)
    final = driver(settings, kube, Scripted(["promote", "rollback"])).start(v2, PLAN)

    assert final.phase == st.ROLLED_BACK and champion(settings) == v1
    assert spec_steps(kube) == [(10, "canary", 0), (50, "canary", 1), (0, "rolled-back", 1)]
    rejected = json.loads(tags(settings, v2)[TAG_REJECTED])
    assert rejected["reasons"] == ["scripted: 1 (stable 0, canary 1) breaks bound <= 0.5; scripted rollback"]
    traffic = kube.get(NAMESPACE, NAME)["status"]["components"]["predictor"]["traffic"]
    assert {t["tag"]: t["percent"] for t in traffic} == {"latest": 0, "prev": 100}
    with pytest.raises(RolloutError, match="rejected by an earlier rollout"):
        driver(settings, kube).start(v2, PLAN)


def test_hold_waits_then_rolls_back_after_the_hold_timeout(settings, versions, kube):
    v1, v2 = versions(2)
    make_champion(settings, v1)
    now = [1000.0]  # time passes only while the driver sleeps

    def sleep(seconds: float) -> None:
        now[0] += seconds

    plan = RolloutPlan(steps=(10, 100), bake_s=60, ready_timeout_s=0, hold_timeout_s=250)
    analysis = Scripted(["hold"] * 10)
    isvc = InferenceServices(api_client(kube.url, retries=0), NAMESPACE, NAME)
    d = Driver(settings, isvc, analysis, sleep=sleep, clock=lambda: now[0], poll_s=100)
    final = d.start(v2, plan)
    assert final.phase == st.ROLLED_BACK and final.reason.startswith("held for 300 s > 250 s")
    assert len(analysis.calls) == 4  # after the bake, then every 100 s while holding: 0, 100, 200, 300
    assert champion(settings) == v1


def test_a_revision_that_fails_is_rolled_back_without_analysis(settings, versions, kube):
    v1, v2 = versions(2)
    make_champion(settings, v1)
    kube.fail_revision = True
    analysis = Scripted()
    final = driver(settings, kube, analysis).start(v2, PLAN)
    assert final.phase == st.ROLLED_BACK and "RevisionFailed" not in final.reason
    assert "container exited" in final.reason and analysis.calls == []


def test_first_deployment_goes_to_100_and_is_promoted(settings, versions, kube):
    (v1,) = versions(1)
    final = driver(settings, kube).start(v1, PLAN)
    assert final.phase == st.PROMOTED and champion(settings) == v1
    assert spec_steps(kube) == [(None, "canary", 0), ("-", "promoted", 0)]


@pytest.mark.parametrize("cut", [1, 2, 3, 4])
def test_resume_after_an_interruption_at_every_patch_ends_as_an_uninterrupted_run(
    settings, versions, kube, cut
):
    """The API server applies patch ``cut`` and the driver never hears back (it died there)."""
    v1, v2 = versions(2)
    make_champion(settings, v1)
    kube.cut(cut)
    with pytest.raises(KubeError, match="unreachable"):
        driver(settings, kube).start(v2, PLAN)
    kube.cut(None)
    final = driver(settings, kube).resume()

    assert final.phase == st.PROMOTED and champion(settings) == v2
    # The patches that took effect, de-duplicated in order, are exactly the uninterrupted sequence.
    seen = []
    for item in spec_steps(kube):
        if not seen or seen[-1] != item:
            seen.append(item)
    assert seen == PROMOTED_SEQUENCE
    assert kube.rejected == []


@pytest.mark.parametrize("cut", [1, 2, 3])
def test_resume_after_an_interruption_of_a_rollback(settings, versions, kube, cut):
    v1, v2 = versions(2)
    make_champion(settings, v1)
    kube.cut(cut)
    with pytest.raises(KubeError):
        driver(settings, kube, Scripted(["promote", "rollback"])).start(v2, PLAN)
    kube.cut(None)
    final = driver(settings, kube, Scripted(["rollback"])).resume()
    assert final.phase == st.ROLLED_BACK and champion(settings) == v1
    assert TAG_REJECTED in tags(settings, v2)
    assert kube.get(NAMESPACE, NAME)["spec"]["predictor"]["canaryTrafficPercent"] == 0


def test_start_again_of_the_same_version_resumes_and_of_another_refuses(settings, versions, kube):
    v1, v2, v3 = versions(3)
    make_champion(settings, v1)
    kube.cut(2)
    with pytest.raises(KubeError):
        driver(settings, kube).start(v2, PLAN)
    kube.cut(None)
    with pytest.raises(RolloutError, match=rf"rollout of .* v{v2} is in progress \(step 1"):
        driver(settings, kube).start(v3, PLAN)
    assert driver(settings, kube).start(v2, PLAN).phase == st.PROMOTED


def test_a_second_driver_refuses_naming_the_first(settings, versions, kube):
    v1, v2 = versions(2)
    make_champion(settings, v1)
    first = "rollout start by alice on churn/churn"
    with (
        connect(settings, "first driver") as registry,
        promotion_lock(registry, owner=first, kind="rollout"),
        pytest.raises(RegistryBusyError, match=rf"held by {first} \(pid \d+ on \S+\) since"),
    ):
        driver(settings, kube).start(v2, PLAN)
    assert kube.patches() == []


def test_manual_promote_and_rollback_from_the_middle(settings, versions, kube):
    v1, v2, v3 = versions(3)
    make_champion(settings, v1)
    kube.cut(1)  # left at 10 %
    with pytest.raises(KubeError):
        driver(settings, kube).start(v2, PLAN)
    kube.cut(None)
    with pytest.raises(Exception, match="--reason"):
        driver(settings, kube).promote(" ")
    assert driver(settings, kube).promote("looks fine in Grafana").phase == st.PROMOTED
    assert champion(settings) == v2
    with pytest.raises(RolloutError, match="already promoted"):
        driver(settings, kube).rollback("too late")

    kube.requests.clear()
    kube.cut(1)
    with pytest.raises(KubeError):
        driver(settings, kube).start(v3, PLAN)
    kube.cut(None)
    assert driver(settings, kube).rollback("pager went off").phase == st.ROLLED_BACK
    assert spec_steps(kube) == [(10, "canary", 0), (0, "rolled-back", 0)]
    assert json.loads(tags(settings, v3)[TAG_REJECTED])["reasons"] == ["manual rollback: pager went off"]


def test_refuses_versions_that_cannot_be_rolled_out(settings, versions, kube):
    v1, failed = versions(2)[0], versions(1, gate="failed")[0]
    (no_image,) = versions(1, image=False)
    make_champion(settings, v1)
    with pytest.raises(RolloutError, match="quality gate failed"):
        driver(settings, kube).start(failed, PLAN)
    with pytest.raises(RolloutError, match="serving_image_tag"):
        driver(settings, kube).start(no_image, PLAN)
    with pytest.raises(RolloutError, match="already the champion"):
        driver(settings, kube).start(v1, PLAN)
    assert kube.patches() == []


@pytest.mark.parametrize("mode", ["Standard", "RawDeployment", "ModelMesh", None])
def test_modes_that_cannot_split_traffic_are_refused_with_the_reason(settings, versions, mode):
    from tests.components.rollout.conftest import base_inference_service
    from tests.support.kube_api import FakeKubeApi

    v1, v2 = versions(2)
    make_champion(settings, v1)
    obj = base_inference_service("1")
    if mode is None:
        del obj["metadata"]["annotations"]["serving.kserve.io/deploymentMode"]
    else:
        obj["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] = mode
    with FakeKubeApi() as kube:
        kube.add(obj)
        with pytest.raises(ModeError, match=r"(only Knative mode|only in Knative mode)"):
            driver(settings, kube).start(v2, PLAN)
        assert kube.patches() == []


def test_the_legacy_serverless_annotation_is_knative(settings, versions):
    from tests.components.rollout.conftest import base_inference_service
    from tests.support.kube_api import FakeKubeApi

    v1, v2 = versions(2)
    make_champion(settings, v1)
    obj = base_inference_service("1")
    obj["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] = "Serverless"
    with FakeKubeApi() as kube:
        kube.add(obj)
        assert driver(settings, kube).start(v2, PLAN).phase == st.PROMOTED


def test_a_preflight_rejection_stops_the_rollout_before_any_traffic(settings, versions, kube):
    v1, v2, v3 = versions(3)
    make_champion(settings, v1)
    bad = Check("Spearman rank correlation", None, None, 0.2, ">= 0.9", False)

    def rejecting(version: str) -> Verdict:
        return judged(PREFLIGHT, v1, version, [bad], "last 24h, 5000 rows")

    with pytest.raises(RolloutError, match="rejected by the pre-flight replay before any traffic"):
        driver(settings, kube, preflight=rejecting).start(v2, PLAN)
    assert kube.patches() == []
    assert json.loads(tags(settings, v2)[TAG_REJECTED])["reasons"][0] == "pre-flight replay"

    final = driver(settings, kube, preflight=lambda version: skipped(v1, version, 12, 1000)).start(v3, PLAN)
    assert final.phase == st.PROMOTED  # skipped is not a pass: the canary judged it
    assert json.loads(tags(settings, v3)[TAG_ROLLOUT_VERDICT])["step"] == 1
