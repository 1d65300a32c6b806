"""Reading an InferenceService: readiness of the current spec and KServe's deployment mode."""

from __future__ import annotations

import pytest

from components.rollout.kube import KNATIVE, ModeError, deployment_mode, readiness, require_traffic_splitting


def isvc(generation=2, observed=2, ready="True", created="churn-predictor-00002", ready_rev=None, mode=None):
    obj = {
        "metadata": {"generation": generation, "annotations": {}},
        "status": {
            "observedGeneration": observed,
            "conditions": [{"type": "Ready", "status": ready, "message": "m"}],
            "components": {"predictor": {"latestCreatedRevision": created,
                                         "latestReadyRevision": ready_rev or created}},
        },
    }  # fmt: skip
    if mode:
        obj["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] = mode
    return obj


def test_ready_only_when_the_current_generation_and_the_newest_revision_are():
    assert readiness(isvc())[0] is True
    assert readiness(isvc(observed=1)) == (None, "generation 2 not reconciled yet (observed 1)")
    assert readiness(isvc(ready="Unknown"))[0] is None
    assert readiness(isvc(ready="False")) == (False, "m")
    waiting = readiness(isvc(ready_rev="churn-predictor-00001"))
    assert waiting == (None, "revision churn-predictor-00002 not ready yet (ready: churn-predictor-00001)")


@pytest.mark.parametrize(
    "annotation, status, expected",
    [("Knative", None, "Knative"), ("Serverless", None, "Knative"), ("RawDeployment", None, "Standard"),
     (None, "Serverless", "Knative"), (None, "Standard", "Standard"), (None, None, None)],
)  # fmt: skip
def test_the_mode_is_normalised_as_kserve_does(annotation, status, expected):
    obj = isvc(mode=annotation)
    if status:
        obj["status"]["deploymentMode"] = status
    assert deployment_mode(obj) == expected
    if expected == KNATIVE:
        assert require_traffic_splitting(obj, "x") == KNATIVE
    else:
        with pytest.raises(ModeError, match=r"(Knative mode|mode unknown)"):
            require_traffic_splitting(obj, "x")
